import Domain
import Foundation
import GRDB

/// The SQLite implementation of `ExecutionStore` (GRDB on the system's libsqlite3): WAL, foreign
/// keys, one writer and a pool of readers, migrations at open. Dates are stored as integer
/// milliseconds since 1970, output as BLOBs. All work runs on GRDB's queues.
public final class SQLiteStore: ExecutionStore {
    public let path: String
    let pool: DatabasePool

    /// Opens (creating it and its folder when missing) and migrates the database at `path`.
    public convenience init(path: String) throws {
        try self.init(path: path, migrateUpTo: nil)
    }

    /// Opens the database, migrating only up to `version` (nil: all): for migration tests.
    public init(path: String, migrateUpTo version: String?) throws {
        self.path = path
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw StoreError.unavailable("cannot create the database folder \(folder): \(error.localizedDescription)")
        }
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(5)
        // WAL with synchronous=NORMAL: a commit survives any crash or kill of the server (what
        // "nothing accepted is lost" is about); only a power cut may lose the last commits.
        // Measured here: FULL's fsync per transaction made each claim and finish ~20% slower.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            if let version { try Migrations.migrator.migrate(pool, upTo: version) } else { try Migrations.migrator.migrate(pool) }
        } catch {
            throw Self.storeError(error, path: path)
        }
    }

    // MARK: Jobs

    public func createJob(_ job: NewJob) async throws -> Job {
        try await write { db in
            let now = Millis.now
            do {
                try db.execute(sql: """
                    INSERT INTO job (name, script_type, script_content, policy, limits, concurrency, arguments, environment, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [job.name, job.scriptType.rawValue, job.scriptContent, job.policy, JSON.encode(job.limits),
                                     job.concurrency.rawValue, JSON.encode(job.arguments), JSON.encode(job.environment), now, now])
            } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
                throw StoreError.conflict("a job named \(job.name) already exists")
            }
            return try Self.fetchJob(db, id: db.lastInsertedRowID)!
        }
    }

    public func job(id: Int64) async throws -> Job? {
        try await read { db in try Self.fetchJob(db, id: id) }
    }

    public func job(named name: String) async throws -> Job? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM job WHERE name = ?", arguments: [name]).map(Records.job)
        }
    }

    public func jobs(scriptType: ScriptType?) async throws -> [Job] {
        try await read { db in
            if let scriptType {
                return try Row.fetchAll(db, sql: "SELECT * FROM job WHERE script_type = ? ORDER BY id", arguments: [scriptType.rawValue]).map(Records.job)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM job ORDER BY id").map(Records.job)
        }
    }

    public func updateJob(id: Int64, _ patch: JobPatch) async throws -> Job {
        try await write { db in
            guard var job = try Self.fetchJob(db, id: id) else { throw StoreError.notFound("job \(id)") }
            if let v = patch.name { job.name = v }
            if let v = patch.scriptType { job.scriptType = v }
            if let v = patch.scriptContent { job.scriptContent = v }
            if let v = patch.policy { job.policy = v }
            if let v = patch.limits { job.limits = v }
            if let v = patch.concurrency { job.concurrency = v }
            if let v = patch.arguments { job.arguments = v }
            if let v = patch.environment { job.environment = v }
            do {
                try db.execute(sql: """
                    UPDATE job SET name = ?, script_type = ?, script_content = ?, policy = ?, limits = ?, concurrency = ?,
                    arguments = ?, environment = ?, updated_at = ? WHERE id = ?
                    """, arguments: [job.name, job.scriptType.rawValue, job.scriptContent, job.policy, JSON.encode(job.limits),
                                     job.concurrency.rawValue, JSON.encode(job.arguments), JSON.encode(job.environment), Millis.now, id])
            } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
                throw StoreError.conflict("a job named \(job.name) already exists")
            }
            return try Self.fetchJob(db, id: id)!
        }
    }

    public func deleteJob(id: Int64) async throws {
        try await write { db in
            guard try Self.fetchJob(db, id: id) != nil else { throw StoreError.notFound("job \(id)") }
            if let active = try Int64.fetchOne(db, sql: "SELECT id FROM execution WHERE job_id = ? AND status IN ('PENDING', 'RUNNING') LIMIT 1", arguments: [id]) {
                throw StoreError.conflict("job \(id) has execution \(active) pending or running; cancel it first")
            }
            try db.execute(sql: "DELETE FROM job WHERE id = ?", arguments: [id])
        }
    }

    // MARK: Executions

    public func enqueue(_ new: NewExecution, queueLimit: Int) async throws -> Execution {
        try await write { db in
            guard try Self.fetchJob(db, id: new.jobID) != nil else { throw StoreError.notFound("job \(new.jobID)") }
            if new.concurrency == .forbid,
               let active = try Int64.fetchOne(db, sql: "SELECT id FROM execution WHERE job_id = ? AND status IN ('PENDING', 'RUNNING') LIMIT 1", arguments: [new.jobID]) {
                throw StoreError.conflict("job \(new.jobID) already has execution \(active) pending or running (concurrency: forbid)")
            }
            let pending = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM execution WHERE status = 'PENDING'") ?? 0
            if pending >= queueLimit { throw StoreError.queueFull(limit: queueLimit) }
            try db.execute(sql: """
                INSERT INTO execution (job_id, status, script_type, script_snapshot, policy_name, policy_snapshot, concurrency,
                arguments, environment, stdin, priority, created_at)
                VALUES (?, 'PENDING', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [new.jobID, new.scriptType.rawValue, new.scriptSnapshot, new.policyName, new.policySnapshot,
                                 new.concurrency.rawValue, JSON.encode(new.arguments), JSON.encode(new.environment), new.stdin,
                                 new.priority, Millis.of(new.createdAt)])
            return try Self.fetchExecution(db, id: db.lastInsertedRowID)!
        }
    }

    public func claimNext(worker: String, leaseUntil: Date, now: Date) async throws -> Execution? {
        try await write { db in
            // A lease that expired: its worker is gone; take the execution over.
            if let expired = try Int64.fetchOne(db, sql: """
                SELECT id FROM execution WHERE status = 'RUNNING' AND lease_deadline < ? ORDER BY id LIMIT 1
                """, arguments: [Millis.of(now)]) {
                try db.execute(sql: "UPDATE execution SET worker = ?, lease_deadline = ? WHERE id = ? AND status = 'RUNNING'",
                               arguments: [worker, Millis.of(leaseUntil), expired])
                return try Self.fetchExecution(db, id: expired)
            }
            // Highest priority, then oldest; a `queue` job waits while one of its runs is running.
            guard let id = try Int64.fetchOne(db, sql: """
                SELECT e.id FROM execution e
                WHERE e.status = 'PENDING'
                  AND (e.concurrency != 'queue' OR NOT EXISTS
                       (SELECT 1 FROM execution r WHERE r.job_id = e.job_id AND r.status = 'RUNNING'))
                ORDER BY e.priority DESC, e.id LIMIT 1
                """) else { return nil }
            try db.execute(sql: """
                UPDATE execution SET status = 'RUNNING', started_at = ?, worker = ?, lease_deadline = ?
                WHERE id = ? AND status = 'PENDING'
                """, arguments: [Millis.of(now), worker, Millis.of(leaseUntil), id])
            return try Self.fetchExecution(db, id: id)
        }
    }

    public func renewLease(executionID: Int64, worker: String, until: Date) async throws {
        try await write { db in
            try db.execute(sql: "UPDATE execution SET lease_deadline = ? WHERE id = ? AND status = 'RUNNING' AND worker = ?",
                           arguments: [Millis.of(until), executionID, worker])
            if db.changesCount == 0 { throw StoreError.notFound("running execution \(executionID) of worker \(worker)") }
        }
    }

    public func appendOutput(executionID: Int64, stdout: Data, stderr: Data, stdoutBytes: Int64, stderrBytes: Int64) async throws {
        try await write { db in
            // `||` yields TEXT in SQLite: cast back so that bytes stay bytes.
            try db.execute(sql: """
                UPDATE execution SET stdout = CAST(stdout || ? AS BLOB), stderr = CAST(stderr || ? AS BLOB),
                stdout_bytes = MAX(stdout_bytes, ?), stderr_bytes = MAX(stderr_bytes, ?)
                WHERE id = ? AND status = 'RUNNING'
                """, arguments: [stdout, stderr, stdoutBytes, stderrBytes, executionID])
            if db.changesCount == 0 { try Self.requireStatus(db, executionID, .running, to: "appended to") }
        }
    }

    public func finish(executionID: Int64, _ outcome: ExecutionOutcome) async throws -> Execution {
        try await write { db in
            try db.execute(sql: """
                UPDATE execution SET status = ?, verdict = ?, exit_code = ?, signal = ?, reason = ?, stdout = ?, stderr = ?,
                stdout_bytes = ?, stderr_bytes = ?, stdout_truncated = ?, stderr_truncated = ?, wall_ms = ?, cpu_ms = ?,
                memory_peak_bytes = ?, finished_at = ?, lease_deadline = NULL
                WHERE id = ? AND status = 'RUNNING'
                """, arguments: [outcome.status.rawValue, outcome.verdict.rawValue, outcome.exitCode, outcome.signal, outcome.reason,
                                 outcome.stdout, outcome.stderr, outcome.stdoutBytes, outcome.stderrBytes, outcome.stdoutTruncated,
                                 outcome.stderrTruncated, outcome.usage.wallMs, outcome.usage.cpuMs, outcome.usage.memoryPeakBytes,
                                 Millis.of(outcome.finishedAt), executionID])
            if db.changesCount == 0 { try Self.requireStatus(db, executionID, .running, to: outcome.status.rawValue) }
            return try Self.fetchExecution(db, id: executionID)!
        }
    }

    public func cancel(executionID: Int64, now: Date) async throws -> Execution {
        try await write { db in
            guard let current = try Self.fetchExecution(db, id: executionID) else { throw StoreError.notFound("execution \(executionID)") }
            switch current.status {
            case .pending:
                try db.execute(sql: """
                    UPDATE execution SET status = 'CANCELLED', verdict = 'cancelled', reason = 'cancelled before it started',
                    finished_at = ? WHERE id = ? AND status = 'PENDING'
                    """, arguments: [Millis.of(now), executionID])
            case .running:
                try db.execute(sql: "UPDATE execution SET cancel_requested = 1 WHERE id = ? AND status = 'RUNNING'", arguments: [executionID])
            default:
                throw StoreError.invalidTransition(executionID: executionID, from: current.status, to: ExecutionStatus.cancelled.rawValue)
            }
            return try Self.fetchExecution(db, id: executionID)!
        }
    }

    public func isCancelRequested(executionID: Int64) async throws -> Bool {
        try await read { db in
            try Bool.fetchOne(db, sql: "SELECT cancel_requested FROM execution WHERE id = ?", arguments: [executionID]) ?? false
        }
    }

    public func interruptRunning(worker: String?, reason: String, now: Date) async throws -> [Execution] {
        try await write { db in
            let ids: [Int64]
            if let worker {
                ids = try Int64.fetchAll(db, sql: "SELECT id FROM execution WHERE status = 'RUNNING' AND worker = ?", arguments: [worker])
            } else {
                ids = try Int64.fetchAll(db, sql: "SELECT id FROM execution WHERE status = 'RUNNING'")
            }
            for id in ids {
                try db.execute(sql: """
                    UPDATE execution SET status = 'FAILED', verdict = 'interrupted', reason = ?, finished_at = ?, lease_deadline = NULL
                    WHERE id = ? AND status = 'RUNNING'
                    """, arguments: [reason, Millis.of(now), id])
            }
            return try ids.compactMap { try Self.fetchExecution(db, id: $0) }
        }
    }

    public func execution(id: Int64) async throws -> Execution? {
        try await read { db in try Self.fetchExecution(db, id: id) }
    }

    public func executions(_ query: ExecutionQuery) async throws -> ExecutionPage {
        try await read { db in
            var clauses: [String] = []
            var arguments: StatementArguments = []
            if let jobID = query.jobID {
                clauses.append("job_id = ?")
                arguments += [jobID]
            }
            if !query.statuses.isEmpty {
                clauses.append("status IN (\(query.statuses.map { _ in "?" }.joined(separator: ", ")))")
                arguments += StatementArguments(query.statuses.map(\.rawValue))
            }
            if !query.verdicts.isEmpty {
                clauses.append("verdict IN (\(query.verdicts.map { _ in "?" }.joined(separator: ", ")))")
                arguments += StatementArguments(query.verdicts.map(\.rawValue))
            }
            if let after = query.createdAfter {
                clauses.append("created_at >= ?")
                arguments += [Millis.of(after)]
            }
            if let before = query.createdBefore {
                clauses.append("created_at < ?")
                arguments += [Millis.of(before)]
            }
            if let cursor = query.before {
                clauses.append("id < ?")
                arguments += [cursor]
            }
            let limit = max(1, min(1000, query.limit))
            let whereSQL = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM execution \(whereSQL) ORDER BY id DESC LIMIT \(limit + 1)",
                                        arguments: arguments)
            let page = rows.prefix(limit).map(Records.execution)
            return ExecutionPage(executions: Array(page), nextCursor: rows.count > limit ? page.last?.id : nil)
        }
    }

    public func pendingCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM execution WHERE status = 'PENDING'") ?? 0 }
    }

    public func prune(keepPerJob: Int?, olderThan: Date?) async throws -> Int {
        try await write { db in
            var deleted = 0
            if let keepPerJob {
                try db.execute(sql: """
                    DELETE FROM execution WHERE status NOT IN ('PENDING', 'RUNNING') AND id IN (
                      SELECT id FROM (
                        SELECT id, ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY id DESC) AS n
                        FROM execution WHERE status NOT IN ('PENDING', 'RUNNING'))
                      WHERE n > ?)
                    """, arguments: [max(0, keepPerJob)])
                deleted += db.changesCount
            }
            if let olderThan {
                try db.execute(sql: "DELETE FROM execution WHERE status NOT IN ('PENDING', 'RUNNING') AND finished_at < ?",
                               arguments: [Millis.of(olderThan)])
                deleted += db.changesCount
            }
            return deleted
        }
    }

    // MARK: Helpers

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.read(body) } catch { throw Self.storeError(error, path: path) }
    }

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.write(body) } catch { throw Self.storeError(error, path: path) }
    }

    static func fetchJob(_ db: Database, id: Int64) throws -> Job? {
        try Row.fetchOne(db, sql: "SELECT * FROM job WHERE id = ?", arguments: [id]).map(Records.job)
    }

    static func fetchExecution(_ db: Database, id: Int64) throws -> Execution? {
        try Row.fetchOne(db, sql: "SELECT * FROM execution WHERE id = ?", arguments: [id]).map(Records.execution)
    }

    /// Throws the precise reason an update guarded on `status` changed nothing.
    static func requireStatus(_ db: Database, _ id: Int64, _ status: ExecutionStatus, to target: String) throws {
        guard let current = try String.fetchOne(db, sql: "SELECT status FROM execution WHERE id = ?", arguments: [id]) else {
            throw StoreError.notFound("execution \(id)")
        }
        let from = ExecutionStatus(rawValue: current) ?? .failed
        if from != status { throw StoreError.invalidTransition(executionID: id, from: from, to: target) }
    }

    /// Every failure as a StoreError with words an operator can act on.
    static func storeError(_ error: any Error, path: String) -> StoreError {
        if let e = error as? StoreError { return e }
        guard let e = error as? DatabaseError else { return .unavailable("\(error)") }
        switch e.resultCode {
        case .SQLITE_FULL: return .unavailable("the disk holding \(path) is full")
        case .SQLITE_BUSY, .SQLITE_LOCKED: return .unavailable("\(path) is locked by another process (\(e.message ?? "busy"))")
        case .SQLITE_READONLY: return .unavailable("\(path) is read-only")
        case .SQLITE_CANTOPEN: return .unavailable("cannot open \(path) (\(e.message ?? "check the path and its permissions"))")
        case .SQLITE_CORRUPT, .SQLITE_NOTADB: return .unavailable("\(path) is not a valid Confine database (\(e.message ?? "corrupt"))")
        case .SQLITE_IOERR: return .unavailable("I/O error on \(path) (\(e.message ?? "io"))")
        case .SQLITE_CONSTRAINT: return .conflict(e.message ?? "constraint violated")
        default: return .unavailable("\(path): \(e.message ?? "\(e.resultCode)")")
        }
    }
}

/// Milliseconds since 1970: how the store keeps dates.
enum Millis {
    static var now: Int64 { of(Date()) }
    static func of(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func date(_ millis: Int64) -> Date { Date(timeIntervalSince1970: TimeInterval(millis) / 1000) }
}

/// JSON text columns (lists and maps).
enum JSON {
    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String?, default value: T) -> T {
        guard let text else { return value }
        return (try? JSONDecoder().decode(T.self, from: Data(text.utf8))) ?? value
    }
}
