import Domain
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The PostgreSQL implementation of `ExecutionStore` and `AccessStore` (PostgresNIO): one
/// database shared by any number of `confine serve` nodes.
///
/// What it promises, beyond the protocols' contracts:
/// - the schema migrated at open by whichever node gets the migration advisory lock first
///   (the others wait for it), with the same version names as SQLite's (`Migrations`); a
///   database written by a newer Confine is refused naming both versions;
/// - every transition one transaction guarded on the current status, as in SQLite;
/// - claims lock their row with `FOR UPDATE SKIP LOCKED` (two nodes never wait on, nor take,
///   the same execution); what must be exact across nodes at submission — `forbid`, the
///   submitter's `max_active`, the queue bound — is checked under one transaction-scoped
///   advisory lock (`PostgresLocks.enqueue`), so two nodes' submissions are serialized there
///   and nowhere else; a `queue` job's runs are claimed one at a time under a per-job advisory
///   lock; unique job names are a unique index;
/// - every failure a `StoreError`; the address in every message has its password hidden;
/// - an operation that cannot get a connection within `operationTimeout` (the server is down
///   or unreachable) fails as `.unavailable` naming the address and the reason, instead of
///   waiting: the API answers 503 and the node goes on trying by itself;
/// - all work on NIO's event loops (PostgresNIO), never blocking Swift's cooperative pool.
///
/// Dates are BIGINT milliseconds since 1970, output pieces and stdin BYTEA, lists and maps
/// JSON text: the values are those of the SQLite schema, column for column.
public final class PostgresStore: ExecutionStore, AccessStore {
    /// The server and database (printed with its password hidden).
    public let address: PostgresAddress
    let client: PostgresClient
    let logger: Logger
    /// How long one operation may wait for the database before it fails as `.unavailable`.
    public let operationTimeout: Duration
    private let runner: Task<Void, Never>
    /// Events of other nodes (NOTIFY), fed by the listening connection.
    let hub = PostgresEventHub()
    private let listener = Mutex<Task<Void, Never>?>(nil)
    /// Set while the server does not answer: operations then give up after `downTimeout`
    /// instead of `operationTimeout`, so that requests during an outage are answered 503 fast.
    private let down = Atomic<Bool>(false)
    /// When the server last answered again after this store found it down (nil: never down).
    let recoveredAt = Mutex<ContinuousClock.Instant?>(nil)
    /// Set by `close()` and `shutdown()`: operations fail at once.
    private let closed = Atomic<Bool>(false)
    /// How long an operation waits while the server is known to be down.
    static let downTimeout: Duration = .seconds(2)

    /// How long `open` tries to reach the server before it gives up, by default.
    public static let defaultConnectTimeout: Duration = .seconds(30)

    /// Connects to `address` (retrying for up to `connectTimeout` while the server cannot be
    /// reached, then failing with the address and the last reason), then migrates the schema
    /// under the migration advisory lock, only up to `version` when given (for tests).
    public static func open(_ address: PostgresAddress, connectTimeout: Duration = defaultConnectTimeout,
                            operationTimeout: Duration = .seconds(10), maximumConnections: Int = 20,
                            migrateUpTo version: String? = nil,
                            logger: Logger = Logger(label: "confine.store.postgres")) async throws -> PostgresStore {
        let store = PostgresStore(address: address, operationTimeout: operationTimeout, maximumConnections: maximumConnections,
                                  logger: logger)
        do {
            try await store.waitForServer(within: connectTimeout)
            try await PostgresSchema.migrate(store, upTo: version)
            store.startListening()
        } catch {
            store.close()
            throw store.storeError(error)
        }
        return store
    }

    private init(address: PostgresAddress, operationTimeout: Duration, maximumConnections: Int, logger: Logger) {
        self.address = address
        self.logger = logger
        self.operationTimeout = operationTimeout
        // PostgresNIO says every failed connection attempt at info: a server down for a minute
        // would fill the log. The store says what matters itself (warnings, once per outage).
        var background = logger
        background.logLevel = max(logger.logLevel, .warning)
        client = PostgresClient(configuration: Self.clientConfiguration(address, maximumConnections: maximumConnections),
                                backgroundLogger: background)
        let client = self.client
        runner = Task { await client.run() }
    }

    deinit {
        runner.cancel()
        listener.withLock { $0?.cancel() }
    }

    /// Closes every connection; the store answers `.unavailable` afterwards. Returns at once
    /// (the connections close in the background): `shutdown()` waits for them.
    public func close() {
        closed.store(true, ordering: .relaxed)
        listener.withLock { $0?.cancel() }
        runner.cancel()
    }

    /// Closes the listening connection and the pool's connections (each told goodbye with
    /// PostgreSQL's Terminate message, not dropped) and returns once they are closed: what
    /// `confine serve` does last when it stops. The store answers `.unavailable` afterwards.
    public func shutdown() async {
        closed.store(true, ordering: .relaxed)
        let listening = listener.withLock { task -> Task<Void, Never>? in
            task?.cancel()
            return task
        }
        await listening?.value
        runner.cancel()
        await runner.value
        logger.info("closed the connections to PostgreSQL at \(address)")
    }

    private func startListening() {
        let address = self.address, hub = self.hub, logger = self.logger
        listener.withLock { $0 = Task { await Self.listen(address: address, hub: hub, logger: logger) } }
    }

    static func clientConfiguration(_ address: PostgresAddress, maximumConnections: Int) -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let socket = address.socketPath {
            configuration = .init(unixSocketPath: socket, username: address.user, password: address.password,
                                  database: address.database)
        } else {
            let tls: PostgresClient.Configuration.TLS
            switch address.sslMode {
            case .disable: tls = .disable
            case .allow, .prefer:
                var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
                tlsConfiguration.certificateVerification = .none
                tls = .prefer(tlsConfiguration)
            case .require:
                var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
                tlsConfiguration.certificateVerification = .none
                tls = .require(tlsConfiguration)
            case .verifyCA:
                var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
                tlsConfiguration.certificateVerification = .noHostnameVerification
                tls = .require(tlsConfiguration)
            case .verifyFull:
                tls = .require(.makeClientConfiguration())
            }
            configuration = .init(host: address.host, port: address.port, username: address.user, password: address.password,
                                  database: address.database, tls: tls)
        }
        configuration.options.maximumConnections = max(2, maximumConnections)
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.additionalStartupParameters = [("application_name", "confine")]
        return configuration
    }

    /// Tries `SELECT 1` until it answers or `within` has passed; then fails naming the address
    /// and the last reason.
    private func waitForServer(within limit: Duration) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        var lastError: (any Error)?
        while clock.now < deadline {
            do {
                // One connection of its own, so that the reason of a failure is the real one
                // (the pool only says that it has no connection).
                let logger = self.logger
                try await Self.withOwnConnection(address, timeout: min(.seconds(10), deadline - clock.now), logger: logger) {
                    try await $0.query("SELECT 1", logger: logger)
                }
                return
            } catch {
                lastError = error
                // The server answered with a refusal (login, missing database): no use waiting.
                if let refusal = error as? PSQLError, let state = refusal.serverInfo?[.sqlState], !state.hasPrefix("57P") {
                    throw error
                }
                if case .unavailable = storeError(error) {} else { throw error }
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw StoreError.unavailable("""
            cannot reach PostgreSQL at \(address) within \(Int(limit.components.seconds)) s: \
            \(lastError.map(reason(of:)) ?? "no answer")
            """)
    }

    // MARK: Helpers

    /// `body` on a connection of its own (not the pool's), closed afterwards; failing with the
    /// real reason of a failed connection, or `DeadlineExceeded` after `timeout`.
    static func withOwnConnection<T: Sendable>(_ address: PostgresAddress, timeout: Duration, logger: Logger,
                                               _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask {
                let connection = try await PostgresConnection.connect(configuration: try connectionConfiguration(address), id: 0,
                                                                      logger: logger)
                do {
                    let result = try await body(connection)
                    try? await connection.close()
                    return result
                } catch {
                    try? await connection.close()
                    throw error
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw DeadlineExceeded(limit: timeout)
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// `body` on a connection of the pool, failing as `.unavailable` when none can be had in time.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        if closed.load(ordering: .relaxed) {
            throw StoreError.unavailable("the connections to PostgreSQL at \(address) are closed (this node is stopping)")
        }
        let limit = down.load(ordering: .relaxed) ? Self.downTimeout : operationTimeout
        do {
            let result = try await withDeadline(limit) { [client] in
                try await client.withConnection { connection in try await body(connection) }
            }
            if down.exchange(false, ordering: .relaxed) {
                let now = ContinuousClock.now
                recoveredAt.withLock { $0 = now }
            }
            return result
        } catch {
            // No answer in time, or no connection at all: the server is down or unreachable.
            if error is DeadlineExceeded || (error as? PSQLError)?.serverInfo == nil && error is PSQLError {
                down.store(true, ordering: .relaxed)
            }
            throw storeError(error)
        }
    }

    /// `body` in one transaction (committed when it returns, rolled back when it throws).
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let logger = self.logger
        return try await withConnection { connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                let result = try await body(connection)
                try await connection.query("COMMIT", logger: logger)
                return result
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// The rows of one statement on a pooled connection.
    @discardableResult
    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        let logger = self.logger
        return try await withConnection { connection in try await connection.query(query, logger: logger).collect() }
    }

    /// An operation that did not end in time.
    struct DeadlineExceeded: Error {
        let limit: Duration
    }

    /// `body`, failing with `DeadlineExceeded` (`.unavailable` once mapped) when it has not
    /// ended within `limit` (it is cancelled).
    func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                throw DeadlineExceeded(limit: limit)
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    static func seconds(_ duration: Duration) -> String {
        let value = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return value == value.rounded() ? "\(Int(value)) s" : String(format: "%.1f s", value)
    }

    /// Whether this node listens for other nodes' events now (NOTIFY); while not, it polls.
    public var isListening: Bool { hub.isListening }

    /// PostgreSQL has no disk reserve of Confine's: a full disk is the server's to report.
    public func refusalOfNewData() async -> StoreError? { nil }

    /// Tokens are read from the database at every request: a revocation on any node holds on
    /// every node at its next request.
    public func tokensVersion() -> String? { nil }
}
