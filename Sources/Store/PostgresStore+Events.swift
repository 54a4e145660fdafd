import Domain
import Foundation
import PostgresNIO
import Synchronization

// Wake-ups across nodes: a node that queues an execution or asks for a cancellation sends
// NOTIFY on the `confine` channel from its own transaction (delivered at commit; no trigger
// per row), and every node listens on a dedicated connection of its own (not the pool's),
// reconnected when lost. The engine's polling (at most 1 s) covers what a lost connection missed.

/// The channel and its payloads.
enum PostgresChannel {
    static let name = "confine"
    static let queued = "queued"
    static let cancelPrefix = "cancel:"

    static func event(_ payload: String) -> StoreEvent? {
        if payload == queued { return .queued }
        if payload.hasPrefix(cancelPrefix), let id = Int64(payload.dropFirst(cancelPrefix.count)) {
            return .cancelRequested(executionID: id)
        }
        return nil
    }
}

/// The listeners of a store's events (one stream per `events()` call).
final class PostgresEventHub: Sendable {
    private let continuations = Mutex<[Int: AsyncStream<StoreEvent>.Continuation]>([:])
    private let nextID = Atomic<Int>(0)
    private let listeningNow = Atomic<Bool>(false)

    /// Whether the listening connection listens now (false while it reconnects).
    var isListening: Bool {
        get { listeningNow.load(ordering: .acquiring) }
        set { listeningNow.store(newValue, ordering: .releasing) }
    }

    func subscribe() -> AsyncStream<StoreEvent> {
        let (stream, continuation) = AsyncStream<StoreEvent>.makeStream(bufferingPolicy: .bufferingNewest(64))
        let id = nextID.add(1, ordering: .relaxed).newValue
        continuations.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in _ = self?.continuations.withLock { $0.removeValue(forKey: id) } }
        return stream
    }

    func send(_ event: StoreEvent) {
        for continuation in continuations.withLock({ Array($0.values) }) { continuation.yield(event) }
    }

    func finish() {
        for continuation in continuations.withLock({ Array($0.values) }) { continuation.finish() }
    }
}

extension PostgresStore {
    public func events() -> AsyncStream<StoreEvent> { hub.subscribe() }

    /// The connection settings of the listening connection (the pool's, one connection).
    static func connectionConfiguration(_ address: PostgresAddress) throws -> PostgresConnection.Configuration {
        if let socket = address.socketPath {
            return .init(unixSocketPath: socket, username: address.user, password: address.password, database: address.database)
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        let mode: PostgresConnection.Configuration.TLS
        switch address.sslMode {
        case .disable: mode = .disable
        case .allow, .prefer:
            tls.certificateVerification = .none
            mode = .prefer(try NIOSSLContext(configuration: tls))
        case .require:
            tls.certificateVerification = .none
            mode = .require(try NIOSSLContext(configuration: tls))
        case .verifyCA:
            tls.certificateVerification = .noHostnameVerification
            mode = .require(try NIOSSLContext(configuration: tls))
        case .verifyFull:
            mode = .require(try NIOSSLContext(configuration: tls))
        }
        return .init(host: address.host, port: address.port, username: address.user, password: address.password,
                     database: address.database, tls: mode)
    }

    /// Listens until the store closes, reconnecting after a lost connection (1 s apart, said
    /// once per outage in the log).
    static func listen(address: PostgresAddress, hub: PostgresEventHub, logger: Logger) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                let connection = try await PostgresConnection.connect(configuration: try connectionConfiguration(address), id: 0,
                                                                      logger: logger)
                if failures > 0 { logger.notice("listening for other nodes' events again at \(address)") }
                failures = 0
                do {
                    try await connection.listen(on: PostgresChannel.name) { notifications in
                        // Anything missed while not listening: look for work now.
                        hub.isListening = true
                        hub.send(.queued)
                        for try await notification in notifications {
                            if let event = PostgresChannel.event(notification.payload) { hub.send(event) }
                        }
                    }
                } catch {
                    hub.isListening = false
                    try? await connection.close()
                    throw error
                }
                hub.isListening = false
                try? await connection.close()
            } catch {
                if Task.isCancelled { break }
                if failures == 0 {
                    logger.warning("""
                        the connection listening for other nodes' events at \(address) failed (\(describe(error))); \
                        polling every second meanwhile, reconnecting
                        """)
                }
                failures += 1
            }
            try? await Task.sleep(for: .seconds(1))
        }
        hub.finish()
    }

    /// NOTIFY from inside a transaction (sent at its commit).
    static func notify(_ connection: PostgresConnection, _ payload: String, _ logger: Logger) async throws {
        try await connection.query("SELECT pg_notify(\(PostgresChannel.name), \(payload))", logger: logger)
    }
}
