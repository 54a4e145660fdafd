import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// A loopback HTTP server (Hummingbird) standing in for a webhook receiver: it keeps every
/// request it gets (headers by lowercase name, body) and answers 500 to the first `failFirst`, 200 after.
final class WebhookReceiver: @unchecked Sendable {
    struct Received {
        let headers: [String: String]
        let body: Data
    }

    private let lock = NSLock()
    private var kept: [Received] = []
    private var failuresLeft: Int
    private(set) var port = 0
    private var group: ServiceGroup?
    private var task: Task<Void, any Error>?

    init(failFirst: Int) { failuresLeft = failFirst }

    /// The requests received so far.
    var requests: [Received] { lock.withLock { kept } }

    /// `http://127.0.0.1:PORT/hook`.
    var url: String { "http://127.0.0.1:\(port)/hook" }

    /// Listens on `port` (0: any free one) until `stop()`.
    func start(port wanted: Int = 0) async throws {
        let router = Router()
        router.post("hook") { [self] request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let fail = lock.withLock { () -> Bool in
                kept.append(Received(headers: headers, body: Data(buffer.readableBytesView)))
                if failuresLeft > 0 { failuresLeft -= 1; return true }
                return false
            }
            return Response(status: fail ? .internalServerError : .ok)
        }
        let (ports, bound) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "webhook-receiver")
        logger.logLevel = .warning
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: wanted)),
                              onServerRunning: { channel in
                                  if let port = channel.localAddress?.port { bound.yield(port) }
                                  bound.finish()
                              }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        self.group = group
        task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw TestFailure("the webhook receiver did not start") }
        self.port = port
    }

    func stop() async {
        await group?.triggerGracefulShutdown()
        _ = await task?.result
    }

    /// Waits until `count` requests came (30 s at most).
    func wait(for count: Int, seconds: Double = 30) async throws -> [Received] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let all = requests
            if all.count >= count { return all }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("the receiver got \(requests.count) requests in \(seconds) s, expected \(count)")
    }
}
