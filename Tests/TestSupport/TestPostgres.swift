import Foundation
import Logging
import PostgresNIO

/// The PostgreSQL cluster tests run against: `CONFINE_TEST_POSTGRES_URL`, set by
/// `scripts/with-postgres.sh` (through `make test`) to a throwaway cluster of its own, or by
/// hand to any server where the user may create databases. Each test gets a database of its
/// own, dropped afterwards. Without the variable, the PostgreSQL half of a test is skipped and
/// says so on stderr (once per test).
public enum TestPostgres {
    /// The cluster's URL, or nil when tests run without PostgreSQL.
    public static var url: String? {
        guard let text = ProcessInfo.processInfo.environment["CONFINE_TEST_POSTGRES_URL"], !text.isEmpty else { return nil }
        return text
    }

    /// Says why a PostgreSQL run was skipped.
    public static func saySkipped(_ what: String) {
        FileHandle.standardError.write(Data("""
            SKIP (PostgreSQL): \(what) — CONFINE_TEST_POSTGRES_URL is not set (make test sets it with scripts/with-postgres.sh)

            """.utf8))
    }

    /// The parts of a test cluster's URL (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?host=SOCKETFOLDER]`).
    struct Parts {
        var user: String
        var password: String?
        var host: String
        var port: Int
        var database: String
        var socketFolder: String?

        init?(_ text: String) {
            guard var components = URLComponents(string: text.replacingOccurrences(of: "postgresql://", with: "postgres://")),
                  let user = components.user else { return nil }
            self.user = user
            password = components.password
            host = components.host ?? "localhost"
            port = components.port ?? 5432
            database = String(components.path.dropFirst())
            socketFolder = components.queryItems?.first { $0.name == "host" }?.value
            components.query = nil
        }

        /// The same server with another database, as a URL.
        func url(database name: String) -> String {
            var text = "postgres://\(user)\(password.map { ":\($0)" } ?? "")@\(host):\(port)/\(name)"
            if let socketFolder { text += "?host=\(socketFolder)" }
            return text
        }

        var configuration: PostgresConnection.Configuration {
            if let socketFolder {
                return .init(unixSocketPath: "\(socketFolder)/.s.PGSQL.\(port)", username: user, password: password, database: database)
            }
            return .init(host: host, port: port, username: user, password: password, database: database, tls: .disable)
        }
    }

    /// At most this many tests use the cluster at once: Swift Testing starts every test of the
    /// run together, and dozens of databases made, migrated and filled at the same moment on a
    /// loaded machine made connections wait past any reasonable timeout.
    static let permits = TestPermits(4)

    /// Runs `body` with the URL of a new, empty database on the test cluster, dropped afterwards
    /// (with any connection left to it). nil, and a line on stderr, without a cluster. At most
    /// `permits` of these run at once.
    @discardableResult
    public static func withDatabase<T>(_ what: String = #function, _ body: (String) async throws -> T) async throws -> T? {
        guard url != nil else {
            saySkipped(what)
            return nil
        }
        await permits.acquire()
        do {
            let result = try await withOwnDatabase(body)
            await permits.release()
            return result
        } catch {
            await permits.release()
            throw error
        }
    }

    private static func withOwnDatabase<T>(_ body: (String) async throws -> T) async throws -> T {
        guard let url, let parts = Parts(url) else { throw TestPostgresError(message: "CONFINE_TEST_POSTGRES_URL is not a postgres:// URL") }
        let name = "confine_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        try await admin(parts, "CREATE DATABASE \(name)")
        do {
            let result = try await body(parts.url(database: String(name)))
            try await admin(parts, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            return result
        } catch {
            try? await admin(parts, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            throw error
        }
    }

    /// A new, empty database on the test cluster: its URL and its name (for `dropDatabase`).
    public static func createDatabase() async throws -> (url: String, name: String) {
        guard let url, let parts = Parts(url) else { throw TestPostgresError(message: "CONFINE_TEST_POSTGRES_URL is not set") }
        let name = "confine_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        try await admin(parts, "CREATE DATABASE \(name)")
        return (parts.url(database: String(name)), String(name))
    }

    /// Drops a database made by `createDatabase`, with any connection left to it.
    public static func dropDatabase(_ name: String) async throws {
        try await admin("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// Which store the API and CLI tests run their servers on: `CONFINE_TEST_STORE=postgres`
    /// (make test runs the API suite once more so), else SQLite.
    public static var apiTestsUsePostgres: Bool { ProcessInfo.processInfo.environment["CONFINE_TEST_STORE"] == "postgres" }

    /// One statement on the cluster's own database (the URL's), on a connection of its own.
    public static func admin(_ statement: String) async throws {
        guard let url, let parts = Parts(url) else { throw TestPostgresError(message: "no test cluster") }
        try await admin(parts, statement)
    }

    static func admin(_ parts: Parts, _ statement: String) async throws {
        let logger = Logger(label: "confine.test.postgres")
        let connection = try await PostgresConnection.connect(configuration: parts.configuration, id: 1, logger: logger)
        do {
            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
        } catch {
            try? await connection.close()
            throw TestPostgresError(message: "\(statement): \(String(reflecting: error))")
        }
        try await connection.close()
    }
}

/// A failure of the test cluster's administration, with the statement.
public struct TestPostgresError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// A counting semaphore for tasks (never blocks a thread).
public actor TestPermits {
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public init(_ count: Int) { free = count }

    public func acquire() async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    public func release() {
        if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
    }
}
