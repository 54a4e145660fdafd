import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// The server's open connections, capped so that idle or slow clients cannot take every
/// descriptor and stop `/health` and real requests from being answered (20,000 idle
/// connections once did). At most `maximum` connections are open, and at most `perClient`
/// from one address. A connection over a cap makes room by closing an idle one (no request in
/// progress: a keep-alive connection, or one still sending its headers) — the oldest of the
/// client holding the most, so a flood evicts its own connections first; only when every
/// connection is busy is the new one refused: its first request is answered 503
/// `too-many-connections` (with `Retry-After`) and it is closed, or it is closed after
/// `refusalGrace` if it sends none.
final class ConnectionLimiter: Sendable {
    let maximum: Int
    let perClient: Int
    static let refusalGrace = TimeAmount.seconds(2)

    private struct Entry {
        let channel: any Channel
        let client: String
        var busy: Bool
        var idleSince: UInt64
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var perClient: [String: Int] = [:]
        var clock: UInt64 = 0
        var evicted = 0
        var refused = 0
    }

    private let state = Mutex(State())

    init(maximum: Int, perClient: Int) {
        self.maximum = max(1, maximum)
        self.perClient = max(1, min(perClient, maximum))
    }

    /// The default cap: the open-file limit less room for the database, sandboxes and pipes,
    /// at most 10,000.
    static func defaultMaximum() -> Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1000 }
        let soft = limit.rlim_cur >= rlim_t(1_000_000) ? 1_000_000 : Int(limit.rlim_cur)
        return max(64, min(10_000, soft - 512))
    }

    /// Connections open now, and how many were evicted or refused since the start.
    var counts: (open: Int, evicted: Int, refused: Int) {
        state.withLock { ($0.entries.count, $0.evicted, $0.refused) }
    }

    /// Admits `channel` (true), closing an idle connection to make room when a cap is reached,
    /// or refuses it (false) when every connection that could make room is busy.
    func admit(_ channel: any Channel) -> Bool {
        let client = Self.clientKey(channel)
        let (admitted, victim) = state.withLock { state -> (Bool, (any Channel)?) in
            state.clock += 1
            var victim: (any Channel)?
            if state.perClient[client, default: 0] >= perClient {
                guard let idle = Self.oldestIdle(in: state, of: client) else {
                    state.refused += 1
                    return (false, nil)
                }
                victim = idle
            } else if state.entries.count >= maximum {
                guard let idle = Self.oldestIdleOfBiggestClient(in: state) else {
                    state.refused += 1
                    return (false, nil)
                }
                victim = idle
            }
            if let victim {
                Self.remove(ObjectIdentifier(victim), from: &state)
                state.evicted += 1
            }
            state.entries[ObjectIdentifier(channel)] = Entry(channel: channel, client: client, busy: false, idleSince: state.clock)
            state.perClient[client, default: 0] += 1
            return (true, victim)
        }
        victim?.close(promise: nil)
        return admitted
    }

    /// A request began (its head arrived) or ended (its answer was sent).
    func setBusy(_ channel: any Channel, _ busy: Bool) {
        state.withLock { state in
            state.clock += 1
            let id = ObjectIdentifier(channel)
            guard state.entries[id] != nil else { return }
            state.entries[id]!.busy = busy
            if !busy { state.entries[id]!.idleSince = state.clock }
        }
    }

    func remove(_ channel: any Channel) {
        state.withLock { Self.remove(ObjectIdentifier(channel), from: &$0) }
    }

    private static func remove(_ id: ObjectIdentifier, from state: inout State) {
        guard let entry = state.entries.removeValue(forKey: id) else { return }
        let left = state.perClient[entry.client, default: 1] - 1
        state.perClient[entry.client] = left > 0 ? left : nil
    }

    private static func oldestIdle(in state: State, of client: String) -> (any Channel)? {
        state.entries.values.filter { !$0.busy && $0.client == client }.min { $0.idleSince < $1.idleSince }?.channel
    }

    private static func oldestIdleOfBiggestClient(in state: State) -> (any Channel)? {
        var idleByClient: [String: Entry] = [:]
        for entry in state.entries.values where !entry.busy {
            if let current = idleByClient[entry.client], current.idleSince <= entry.idleSince { continue }
            idleByClient[entry.client] = entry
        }
        let client = idleByClient.keys.max { state.perClient[$0, default: 0] < state.perClient[$1, default: 0] }
        return client.flatMap { idleByClient[$0]?.channel }
    }

    /// The client a connection counts for: its IP address (ports differ per connection).
    static func clientKey(_ channel: any Channel) -> String {
        channel.remoteAddress?.ipAddress ?? "unknown"
    }
}

/// One per HTTP/1 connection: admits it through the `ConnectionLimiter`, tells it when a
/// request is in progress, and answers a refused connection's first request with 503.
final class ConnectionLimitHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let limiter: ConnectionLimiter
    private var refused = false
    private var registered = false

    init(limiter: ConnectionLimiter) {
        self.limiter = limiter
    }

    func handlerAdded(context: ChannelHandlerContext) {
        registered = true
        if !limiter.admit(context.channel) {
            registered = false
            refused = true
            // A refused connection that sends nothing is closed soon, holding nothing long.
            let channel = context.channel
            context.eventLoop.scheduleTask(in: ConnectionLimiter.refusalGrace) { channel.close(promise: nil) }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if refused {
            if case .head(let head) = part { refuse(context, path: head.path ?? "/") }
            return
        }
        if case .head = part { limiter.setBusy(context.channel, true) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), registered {
            limiter.setBusy(context.channel, false)
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if registered { limiter.remove(context.channel) }
        registered = false
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if registered { limiter.remove(context.channel) }
        registered = false
    }

    private func refuse(_ context: ChannelHandlerContext, path: String) {
        var problem = Problem("too-many-connections", .serviceUnavailable, """
            the server has \(limiter.maximum) connections open (max_connections; at most \(limiter.perClient) per client, \
            max_connections_per_client) and every one is busy with a request; retry shortly, and reuse connections
            """)
        problem.extra.retry_after = 1
        let body = problem.encoded(instance: path)
        let head = HTTPResponse(status: .serviceUnavailable, headerFields: [
            .contentType: "application/problem+json", .contentLength: String(body.count), .connection: "close", .retryAfter: "1",
        ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(ByteBuffer(bytes: body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}
