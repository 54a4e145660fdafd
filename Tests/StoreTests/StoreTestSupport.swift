import ConfineTestSupport
import Domain
import Foundation
import GRDB
import PostgresNIO
@testable import Store
import Testing

/// A fresh temporary folder for one test's database files, removed (with the WAL and shared
/// memory files beside the database) when `body` returns or throws.
func withTemporaryFolder<T>(_ body: (URL) async throws -> T) async throws -> T {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("confine-store-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    return try await body(folder)
}

/// A store on its own fresh database file, removed afterwards.
func withStore(busyTimeout: TimeInterval = 5, _ body: (SQLiteStore) async throws -> Void) async throws {
    try await withTemporaryFolder { folder in
        let store = try SQLiteStore(path: folder.appendingPathComponent("confine.sqlite").path, migrateUpTo: nil,
                                    busyTimeout: busyTimeout)
        try await body(store)
    }
}

/// The two implementations the shared store suite runs against.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    var testDescription: String { rawValue }
}

/// What the shared suite needs of a store besides the protocols: its row count, whatever the
/// implementation.
protocol TestStore: ExecutionStore, AccessStore {
    /// Every execution row, whatever its status (to check that nothing was half-stored).
    func executionCount() async throws -> Int
    /// Every row of `schedule_slot` (to check that a job's slots go with it).
    func scheduleSlotCount() async throws -> Int
}

extension SQLiteStore: TestStore {
    func scheduleSlotCount() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM schedule_slot") ?? 0 }
    }
}

extension PostgresStore: TestStore {
    /// Opened with a test's patience: the whole suite loads this machine's two cores.
    static func openForTests(_ address: PostgresAddress) async throws -> PostgresStore {
        try await open(address, connectTimeout: .seconds(120), operationTimeout: .seconds(60), maximumConnections: 8)
    }

    /// Waits (10 s at most) until the database server has been up for longer than `duration`:
    /// no node is judged dead by its heartbeat before that (`interruptDeadNodes`).
    func waitUntilServerUp(longerThan duration: Duration) async throws {
        for _ in 0..<200 {
            let up = try await rows(PostgresQuery(unsafeSQL: "SELECT " + PostgresStore.databaseUpMs)).first!.decode(Int64.self)
            if up > PostgresStore.milliseconds(duration) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func executionCount() async throws -> Int {
        Int(try await rows("SELECT COUNT(*) FROM execution").first?.decode(Int64.self) ?? 0)
    }

    func scheduleSlotCount() async throws -> Int {
        Int(try await rows("SELECT COUNT(*) FROM schedule_slot").first?.decode(Int64.self) ?? 0)
    }
}

/// A store of `kind` on its own fresh database (a file in a temporary folder, or a database
/// made for this test on the cluster of CONFINE_TEST_POSTGRES_URL), removed afterwards. Without
/// that variable the PostgreSQL run is skipped, saying so.
func withStore(_ kind: StoreKind, _ what: String = #function, _ body: (any TestStore) async throws -> Void) async throws {
    switch kind {
    case .sqlite:
        try await withStore { try await body($0) }
    case .postgres:
        try await TestPostgres.withDatabase(what) { url in
            let store = try await PostgresStore.openForTests(try PostgresAddress(url: url))
            defer { store.close() }
            try await body(store)
        }
    }
}

/// A value shared by concurrent tasks (and threads) of a test, behind a lock.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// A date with whole milliseconds, as the store keeps them, so that round trips compare equal.
func millis(_ date: Date) -> Date {
    Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded() / 1000)
}

/// All 256 byte values followed by sequences that are not UTF-8 (a lone continuation byte, a
/// truncated sequence, an overlong NUL, a surrogate, bytes that never occur in UTF-8).
let binaryBytes = Data((0...255).map { UInt8($0) }) + Data([0x80, 0xc3, 0x28, 0xc0, 0x80, 0xed, 0xa0, 0x80, 0xfe, 0xff, 0x00])

extension SQLiteStore {
    /// What the engine would enqueue for `job`: its snapshots as they are now.
    static func newExecution(_ job: Job, priority: Int = 0, at date: Date = Date(), stdin: Data? = nil) -> NewExecution {
        makeNewExecution(job, priority: priority, at: date, stdin: stdin)
    }

    /// Every execution row, whatever its status (to check that nothing was half-stored).
    func executionCount() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM execution") ?? 0 }
    }

    /// The plan SQLite chooses for a statement, as one line.
    func queryPlan(_ sql: String, _ arguments: StatementArguments = []) async throws -> String {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments)
                .map { $0["detail"] as String }.joined(separator: "; ")
        }
    }
}

/// What the engine would enqueue for `job`: its snapshots as they are now.
func makeNewExecution(_ job: Job, priority: Int = 0, at date: Date = Date(), stdin: Data? = nil) -> NewExecution {
    NewExecution(jobID: job.id, scriptType: job.scriptType, scriptSnapshot: job.scriptContent, policyName: job.policy,
                 policySnapshot: "name: \(job.policy)\n# limits: \(job.limits)\n", concurrency: job.concurrency,
                 arguments: job.arguments, environment: job.environment, stdin: stdin, priority: priority,
                 createdAt: date)
}

extension ExecutionStore {
    /// A job with a unique name.
    func makeJob(_ name: String? = nil, concurrency: ConcurrencyRule = .allow, type: ScriptType = .bash,
                 script: String? = nil) async throws -> Job {
        let name = name ?? "job-\(UUID().uuidString.prefix(8))"
        return try await createJob(NewJob(name: name, scriptType: type, scriptContent: script ?? "echo \(name)",
                                          policy: "default", concurrency: concurrency))
    }

    func enqueue(_ job: Job, priority: Int = 0, at date: Date = Date(), queueLimit: Int = 100_000) async throws -> Execution {
        try await enqueue(makeNewExecution(job, priority: priority, at: date), queueLimit: queueLimit)
    }

    func claim(_ worker: String = "w", now: Date = Date(), lease: TimeInterval = 60) async throws -> Execution? {
        try await claimNext(worker: worker, leaseUntil: now + lease, now: now)
    }

    @discardableResult
    func finish(_ id: Int64, _ verdict: ExecutionVerdict = .exited, exit: Int32? = 0, at date: Date = Date()) async throws -> Execution {
        try await finish(executionID: id, ExecutionOutcome(verdict: verdict, exitCode: exit, stdout: Data("done\n".utf8),
                                                           stdoutBytes: 5, finishedAt: date))
    }

    /// Walks every page of `query` and returns the ids in the order served, checking each
    /// page's size and that only the last page has no cursor.
    func walk(_ query: ExecutionQuery, sourceLocation: SourceLocation = #_sourceLocation) async throws -> [Int64] {
        var query = query
        var ids: [Int64] = []
        var pages = 0
        while true {
            let page = try await executions(query)
            pages += 1
            #expect(page.executions.count <= query.limit, sourceLocation: sourceLocation)
            ids += page.executions.map(\.id)
            guard let cursor = page.nextCursor else { break }
            #expect(page.executions.count == query.limit, "a page before the last is full", sourceLocation: sourceLocation)
            #expect(cursor == page.executions.last?.id, sourceLocation: sourceLocation)
            query.before = cursor
            if pages > 10_000 { Issue.record("the pages never end", sourceLocation: sourceLocation); break }
        }
        return ids
    }

}

/// The schema as SQLite reports it, table by table and index by index, independent of how the
/// CREATE statements were spelled or altered: two databases with equal descriptions have the
/// same schema.
func schemaDescription(_ db: Database) throws -> [String] {
    var lines: [String] = []
    let tables = try String.fetchAll(db, sql: """
        SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name
        """)
    for table in tables {
        for column in try Row.fetchAll(db, sql: "SELECT * FROM pragma_table_info(?) ORDER BY cid", arguments: [table]) {
            let name: String = column["name"], type: String = column["type"]
            let notNull: Bool = column["notnull"], pk: Int = column["pk"]
            let defaultValue: String? = column["dflt_value"]
            lines.append("table \(table) column \(name) \(type) notnull=\(notNull) pk=\(pk) default=\(defaultValue ?? "-")")
        }
        for key in try Row.fetchAll(db, sql: "SELECT * FROM pragma_foreign_key_list(?)", arguments: [table]) {
            let to: String = key["table"], from: String = key["from"], onDelete: String = key["on_delete"]
            lines.append("table \(table) foreign key \(from) -> \(to) on delete \(onDelete)")
        }
        for index in try Row.fetchAll(db, sql: "SELECT * FROM pragma_index_list(?) ORDER BY name", arguments: [table]) {
            let name: String = index["name"], unique: Bool = index["unique"], partial: Bool = index["partial"]
            let columns = try Row.fetchAll(db, sql: "SELECT * FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno",
                                           arguments: [name])
                .map { row -> String in
                    let column: String? = row["name"]
                    let desc: Bool = row["desc"]
                    return (column ?? "<expr>") + (desc ? " DESC" : "")
                }
            lines.append("index \(name) on \(table)(\(columns.joined(separator: ", "))) unique=\(unique) partial=\(partial)")
        }
    }
    return lines
}
