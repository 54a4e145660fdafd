import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// One per HTTP/1 connection: a request must arrive whole (its head and all of its body)
/// within `timeout` of its head. A client that sends its body slowly, or stops sending it,
/// gets 408 `request-timeout` (when no answer to that request was begun) and the connection
/// is closed, so it holds nothing of the server past the timeout. Slow or missing headers are
/// the idle timeout's business (Hummingbird's, `idle_timeout`): no request exists before its
/// head is complete.
final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let timeout: TimeAmount
    private var deadline: Scheduled<Void>?
    private var path = "/"
    /// Whether an answer to the request being read was begun (a head written).
    private var answering = false

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = head.path ?? "/"
            answering = false
            deadline?.cancel()
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            deadline = context.eventLoop.scheduleTask(in: timeout) {
                let (handler, context) = loopBound.value
                handler.expired(context)
            }
        case .body:
            break
        case .end:
            deadline?.cancel()
            deadline = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .head = unwrapOutboundIn(data) { answering = true }
        context.write(data, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    private func expired(_ context: ChannelHandlerContext) {
        deadline = nil
        guard context.channel.isActive else { return }
        if !answering {
            let seconds = Double(timeout.nanoseconds) / 1e9
            let problem = Problem("request-timeout", .requestTimeout, """
                the request did not arrive whole within \(seconds.formatted()) s of its head \
                (request_timeout); send the body at once
                """)
            let body = problem.encoded(instance: path)
            let head = HTTPResponse(status: problem.status, headerFields: [
                .contentType: "application/problem+json", .contentLength: String(body.count), .connection: "close",
            ])
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(ByteBuffer(bytes: body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.close(promise: nil)
    }
}

extension Double {
    /// `1`, `0.5`: seconds as an operator writes them.
    fileprivate func formatted() -> String {
        self == rounded() ? String(Int(self)) : String(self)
    }
}
