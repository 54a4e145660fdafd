import Domain
import Foundation
import GRDB

/// The SQLite implementation of `ExecutionStore` (GRDB 7 on the system's libsqlite3).
///
/// What it promises, beyond the protocol's contract:
/// - one database file in WAL mode, foreign keys on, a busy timeout; one writer and a pool of
///   readers (`DatabasePool`), so readers — the API listing executions, a client following
///   the partial output of a RUNNING one — never wait for the writer;
/// - the schema migrated at open (`Migrations`), and a file written by a newer Confine refused
///   rather than misread;
/// - every transition one write transaction guarded on the current status; every refusal and
///   failure a `StoreError` (no `DatabaseError` escapes);
/// - all work on GRDB's own dispatch queues, never blocking Swift's cooperative pool;
/// - dates as integer milliseconds since 1970, output (in pieces, `OutputPieces`) and stdin as
///   BLOBs (binary-safe);
/// - a full disk is survived: room is held back beside the file (`DiskReserve`) and released
///   at the first `SQLITE_FULL`; from then on new jobs, submissions, claims of PENDING work and
///   partial output are refused (`.diskFull`) while running executions can still be finished,
///   until the disk has room again, which ends the full state by itself.
///
/// A commit survives a crash or kill of the server (WAL with `synchronous = NORMAL`); only a
/// power cut may lose the last commits.
public final class SQLiteStore: ExecutionStore {
    /// The database file.
    public let path: String
    let pool: DatabasePool
    /// Room held back for finishing running executions when the disk fills.
    let reserve: DiskReserve
    /// Marks every change to the token set, for servers that keep verified tokens in memory.
    let tokenSentinel: TokenSentinel

    /// The room held back by default: enough to finish a few runs with their complete output.
    public static let defaultReserveBytes = 8 << 20

    /// How many rows one pruning transaction deletes at most, so that the writer is never held
    /// long and enqueues from the API slip in between.
    static let pruneBatch = 500

    /// Opens (creating it and its folder when missing) and migrates the database at `path`,
    /// holding `reserveBytes` of its disk back for a full disk (0: none).
    public convenience init(path: String, reserveBytes: Int = SQLiteStore.defaultReserveBytes) throws {
        try self.init(path: path, migrateUpTo: nil, reserveBytes: reserveBytes)
    }

    /// Opens the database, migrating only up to `version` (nil: the latest): for migration
    /// tests, which build files at every earlier version. `busyTimeout` is how long a write
    /// waits for another process holding the database's write lock before it fails as
    /// `.unavailable`.
    public init(path: String, migrateUpTo version: String?, busyTimeout: TimeInterval = 5,
                reserveBytes: Int = SQLiteStore.defaultReserveBytes) throws {
        self.path = path
        if let version, !Migrations.versions.contains(version) {
            throw StoreError.invalid("unknown schema version \"\(version)\" (known: \(Migrations.versions.joined(separator: ", ")))")
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try Self.makePrivate(path: path, folder: folder)
        var configuration = Configuration()
        configuration.label = "confine-store"
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(busyTimeout)
        configuration.maximumReaderCount = 5
        // WAL with synchronous=NORMAL: a commit survives any crash or kill of the server (what
        // "nothing accepted is lost" is about); only a power cut may lose the last commits.
        // Measured here: FULL's fsync per transaction made each claim and finish ~20% slower.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            let migrator = Migrations.migrator
            let applied = try pool.read { db in try migrator.appliedIdentifiers(db) }
            let unknown = applied.subtracting(Migrations.versions)
            if !unknown.isEmpty {
                throw StoreError.unavailable("""
                    \(path) has schema version \(unknown.sorted().joined(separator: ", ")), written by a newer Confine; \
                    this one knows up to \(Migrations.latest)
                    """)
            }
            let target = version ?? Migrations.latest
            let targetIndex = Migrations.versions.firstIndex(of: target)!
            if let beyond = Migrations.versions.enumerated().first(where: { $0.offset > targetIndex && applied.contains($0.element) }) {
                throw StoreError.invalid("\(path) is already at schema version \(beyond.element), beyond \(target)")
            }
            try migrator.migrate(pool, upTo: target)
        } catch {
            throw Self.storeError(error, path: path)
        }
        self.pool = pool
        self.reserve = DiskReserve(databasePath: path, bytes: reserveBytes)
        self.tokenSentinel = TokenSentinel(databasePath: path)
        if tokenSentinel.version() == nil { tokenSentinel.touch() }
    }

    // MARK: Jobs

    public func createJob(_ job: NewJob) async throws -> Job {
        try await write { db in
            try self.admitNewData()
            let now = Millis.now
            do {
                try db.execute(sql: """
                    INSERT INTO job (name, script_type, script_content, policy, limits, concurrency, arguments, environment,
                                     secret_environment, tenant, created_by, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [job.name, job.scriptType.rawValue, job.scriptContent, job.policy, JSON.encode(job.limits),
                                     job.concurrency.rawValue, JSON.encode(job.arguments), JSON.encode(job.environment),
                                     JSON.encode(job.secretEnvironment), job.tenant ?? "", job.createdBy, now, now])
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
            try Row.fetchOne(db, sql: Records.jobSelect + " WHERE name = ?", arguments: [name]).map(Records.job)
        }
    }

    public func jobs(named name: String) async throws -> [Job] {
        try await read { db in
            try Row.fetchAll(db, sql: Records.jobSelect + " WHERE name = ? ORDER BY id", arguments: [name]).map(Records.job)
        }
    }

    public func jobs(scriptType: ScriptType?, tenant: String?) async throws -> [Job] {
        var conditions = Conditions()
        conditions.add("script_type = ?", scriptType?.rawValue)
        conditions.add("tenant = ?", tenant)
        let sql = Records.jobSelect + conditions.sql + " ORDER BY id", arguments = conditions.arguments
        return try await read { db in try Row.fetchAll(db, sql: sql, arguments: arguments).map(Records.job) }
    }

    public func jobs(scriptType: ScriptType?, tenant: String?, afterID: Int64?, limit: Int) async throws -> [Job] {
        var conditions = Conditions()
        conditions.add("script_type = ?", scriptType?.rawValue)
        conditions.add("tenant = ?", tenant)
        conditions.add("id > ?", afterID)
        let sql = Records.jobSelect + conditions.sql + " ORDER BY id LIMIT \(max(1, limit))", arguments = conditions.arguments
        return try await read { db in try Row.fetchAll(db, sql: sql, arguments: arguments).map(Records.job) }
    }

    public func jobIDs(scriptType: ScriptType?, tenant: String?, afterID: Int64?, limit: Int) async throws -> [Int64] {
        var conditions = Conditions()
        conditions.add("script_type = ?", scriptType?.rawValue)
        conditions.add("tenant = ?", tenant)
        conditions.add("id > ?", afterID)
        let sql = "SELECT id FROM job" + conditions.sql + " ORDER BY id LIMIT \(max(1, limit))", arguments = conditions.arguments
        return try await read { db in try Int64.fetchAll(db, sql: sql, arguments: arguments) }
    }

    public func updateJob(id: Int64, _ patch: JobPatch) async throws -> Job {
        try await write { db in
            try self.admitNewData()
            guard var job = try Self.fetchJob(db, id: id) else { throw StoreError.notFound("job \(id)") }
            if let v = patch.name { job.name = v }
            if let v = patch.scriptType { job.scriptType = v }
            if let v = patch.scriptContent { job.scriptContent = v }
            if let v = patch.policy { job.policy = v }
            if let v = patch.limits { job.limits = v }
            if let v = patch.concurrency { job.concurrency = v }
            if let v = patch.arguments { job.arguments = v }
            if let v = patch.environment { job.environment = v }
            if let v = patch.secretEnvironment { job.secretEnvironment = v }
            do {
                try db.execute(sql: """
                    UPDATE job SET name = ?, script_type = ?, script_content = ?, policy = ?, limits = ?, concurrency = ?,
                    arguments = ?, environment = ?, secret_environment = ?, updated_at = ? WHERE id = ?
                    """, arguments: [job.name, job.scriptType.rawValue, job.scriptContent, job.policy, JSON.encode(job.limits),
                                     job.concurrency.rawValue, JSON.encode(job.arguments), JSON.encode(job.environment),
                                     JSON.encode(job.secretEnvironment), Millis.now, id])
            } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
                throw StoreError.conflict("a job named \(job.name) already exists")
            }
            return try Self.fetchJob(db, id: id)!
        }
    }

    public func deleteJob(id: Int64) async throws {
        try await write { db in
            guard let job = try Self.fetchJob(db, id: id) else { throw StoreError.notFound("job \(id)") }
            if let active = try Self.activeExecution(db, jobID: id) {
                throw StoreError.conflict("""
                    job \(job.name) (\(id)) has execution \(active) pending or running; cancel it or let it end before \
                    deleting the job
                    """)
            }
            try db.execute(sql: "DELETE FROM job WHERE id = ?", arguments: [id])
        }
    }

    // MARK: Executions

    public func enqueue(_ new: NewExecution, queueLimit: Int) async throws -> Execution {
        try await write { db in
            try self.admitNewData()
            guard let job = try Self.fetchJob(db, id: new.jobID) else { throw StoreError.notFound("job \(new.jobID)") }
            if new.concurrency == .forbid, let active = try Self.activeExecution(db, jobID: new.jobID) {
                throw StoreError.conflict("""
                    job \(job.name) (\(job.id)) already has execution \(active) pending or running, and its concurrency \
                    rule is forbid
                    """)
            }
            if let submitter = new.submittedBy, let maxActive = new.maxActive {
                let active = try Int.fetchOne(db, sql: """
                    SELECT COUNT(*) FROM execution WHERE submitted_by = ? AND status IN ('PENDING', 'RUNNING')
                    """, arguments: [submitter]) ?? 0
                if active >= maxActive { throw StoreError.quotaExceeded(limit: maxActive) }
            }
            let pending = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM execution WHERE status = 'PENDING'") ?? 0
            if pending >= queueLimit { throw StoreError.queueFull(limit: queueLimit) }
            try db.execute(sql: """
                INSERT INTO execution (job_id, status, script_type, script_snapshot, policy_name, policy_snapshot, concurrency,
                                       arguments, environment, stdin, priority, created_at, secret_environment, tenant,
                                       submitted_by, weaker_isolation)
                VALUES (?, 'PENDING', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [new.jobID, new.scriptType.rawValue, new.scriptSnapshot, new.policyName, new.policySnapshot,
                                 new.concurrency.rawValue, JSON.encode(new.arguments), JSON.encode(new.environment), new.stdin,
                                 new.priority, Millis.of(new.createdAt), JSON.encode(new.secretEnvironment), job.tenant ?? "",
                                 new.submittedBy, JSON.encode(new.weakerIsolation)])
            return try Self.fetchExecution(db, id: db.lastInsertedRowID)!
        }
    }

    /// The database and what SQLite writes beside it (`-wal`, `-shm`, which SQLite creates with
    /// the database's own mode) are private whatever the umask of whoever opens it: the file is
    /// created 0600 (and an older one narrowed to 0600), in a folder created 0700. An existing
    /// folder is left as it is (it may be shared, such as /var/lib), but never a new one.
    static func makePrivate(path: String, folder: String) throws(StoreError) {
        if !FileManager.default.fileExists(atPath: folder) {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw StoreError.unavailable("cannot create the database folder \(folder): \(error.localizedDescription)")
            }
        }
        for file in [path, path + "-wal", path + "-shm"] {
            let fd = open(file, file == path ? O_RDWR | O_CREAT | O_CLOEXEC : O_RDWR | O_CLOEXEC, 0o600)
            if fd < 0 {
                let code = errno
                // Absent beside files, or a file this process may only read (SQLite says more).
                if (file != path && code == ENOENT) || code == EACCES || code == EROFS { continue }
                throw StoreError.unavailable("cannot open the database file \(file): \(String(cString: strerror(code)))")
            }
            defer { close(fd) }
            var info = stat()
            if fstat(fd, &info) == 0, info.st_mode & 0o077 != 0, fchmod(fd, info.st_mode & 0o700) != 0 {
                let code = errno
                throw StoreError.unavailable("cannot make \(file) private (chmod 600): \(String(cString: strerror(code)))")
            }
        }
    }

    /// The RUNNING execution whose lease expired first (before the argument).
    static let expiredLeaseSQL = """
        SELECT id FROM execution WHERE status = 'RUNNING' AND lease_deadline < ? ORDER BY lease_deadline, id LIMIT 1
        """

    /// The next runnable PENDING execution: highest priority, then oldest; a `queue` job's
    /// execution waits while another execution of the same job runs.
    static let nextPendingSQL = """
        SELECT e.id FROM execution e
        WHERE e.status = 'PENDING'
          AND (e.concurrency != 'queue' OR NOT EXISTS
               (SELECT 1 FROM execution r WHERE r.job_id = e.job_id AND r.status = 'RUNNING'))
        ORDER BY e.priority DESC, e.id LIMIT 1
        """

    /// The oldest runnable PENDING execution at one priority whose tenant is not among
    /// `excluded` of them (one `?` each, after the priority's).
    static func nextPendingOfOtherTenantsSQL(excluded: Int) -> String {
        """
        SELECT e.id FROM execution e
        WHERE e.status = 'PENDING' AND e.priority = ?
          AND e.tenant NOT IN (\(Array(repeating: "?", count: max(1, excluded)).joined(separator: ", ")))
          AND (e.concurrency != 'queue' OR NOT EXISTS
               (SELECT 1 FROM execution r WHERE r.job_id = e.job_id AND r.status = 'RUNNING'))
        ORDER BY e.priority DESC, e.id LIMIT 1
        """
    }

    /// The execution to claim: the first runnable one (highest priority, then oldest), unless
    /// a tenant with fewer RUNNING executions has one runnable at the same priority — then the
    /// oldest of the tenant with the fewest. One tenant with a thousand queued executions thus
    /// does not stall another tenant's single one: the workers are shared fairly.
    static func nextFairPending(_ db: Database) throws -> Int64? {
        guard let first = try Row.fetchOne(db, sql: """
            SELECT id, priority, tenant FROM execution WHERE id = (\(nextPendingSQL))
            """) else { return nil }
        let id: Int64 = first[0], priority: Int = first[1], tenant: String = first[2]
        var running: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT tenant, COUNT(*) FROM execution WHERE status = 'RUNNING' GROUP BY tenant") {
            running[row[0]] = row[1]
        }
        let mine = running[tenant, default: 0]
        guard mine > 0 else { return id }
        // Tenants with fewer running than the first's, the fewest first: at each level, the
        // tenants with more running (and the first's) are left out.
        for level in Set(running.values.filter { $0 < mine } + [0]).sorted() {
            let excluded = running.filter { $0.value > level }.map(\.key) + [tenant]
            let arguments = StatementArguments([priority]) + StatementArguments(excluded)
            if let other = try Int64.fetchOne(db, sql: nextPendingOfOtherTenantsSQL(excluded: excluded.count), arguments: arguments) {
                return other
            }
        }
        return id
    }

    public func claimNext(worker: String, leaseUntil: Date, now: Date) async throws -> Execution? {
        try await write { db in
            // No new work while the disk is full: its output would have nowhere to go.
            guard self.reserve.admits() else { return nil }
            let nowMs = Millis.of(now), leaseMs = Millis.of(leaseUntil)
            // A lease that expired: its worker is gone. Take the execution over; the new worker
            // runs the script from its start, so the dead run's partial output goes.
            if let expired = try Int64.fetchOne(db, sql: Self.expiredLeaseSQL, arguments: [nowMs]) {
                try db.execute(sql: """
                    UPDATE execution SET worker = ?, lease_deadline = ?, takeovers = takeovers + 1,
                      stdout_bytes = 0, stderr_bytes = 0, stdout_truncated = 0, stderr_truncated = 0
                    WHERE id = ? AND status = 'RUNNING' AND lease_deadline < ?
                    """, arguments: [worker, leaseMs, expired, nowMs])
                guard db.changesCount == 1 else { throw StoreError.unavailable("execution \(expired) changed during its take-over") }
                try OutputPieces.clear(db, expired)
                return try Self.fetchExecution(db, id: expired)
            }
            guard let id = try Self.nextFairPending(db) else { return nil }
            try db.execute(sql: """
                UPDATE execution SET status = 'RUNNING', started_at = ?, worker = ?, lease_deadline = ?
                WHERE id = ? AND status = 'PENDING'
                """, arguments: [nowMs, worker, leaseMs, id])
            guard db.changesCount == 1 else { throw StoreError.unavailable("execution \(id) changed while it was claimed") }
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

    public func appendOutput(executionID: Int64, stdout: Data, stdoutOffset: Int64, stderr: Data, stderrOffset: Int64,
                             stdoutBytes: Int64, stderrBytes: Int64) async throws {
        try await write { db in
            try self.admitNewData()
            try db.execute(sql: "UPDATE execution SET stdout_bytes = ?, stderr_bytes = ? WHERE id = ? AND status = 'RUNNING'",
                           arguments: [stdoutBytes, stderrBytes, executionID])
            if db.changesCount == 0 { try Self.requireStatus(db, executionID, .running, to: "given more output") }
            try OutputPieces.append(db, executionID, .stdout, stdout, at: stdoutOffset)
            try OutputPieces.append(db, executionID, .stderr, stderr, at: stderrOffset)
        }
    }

    public func finish(executionID: Int64, _ outcome: ExecutionOutcome) async throws -> Execution {
        try await write { db in
            try db.execute(sql: """
                UPDATE execution SET status = ?, verdict = ?, exit_code = ?, signal = ?, reason = ?,
                  stdout_bytes = ?, stderr_bytes = ?, stdout_truncated = ?, stderr_truncated = ?, wall_ms = ?, cpu_ms = ?,
                  memory_peak_bytes = ?, finished_at = ?, lease_deadline = NULL, weaker_isolation = ?
                WHERE id = ? AND status = 'RUNNING'
                """, arguments: [outcome.status.rawValue, outcome.verdict.rawValue, outcome.exitCode, outcome.signal,
                                 outcome.reason, outcome.stdoutBytes, outcome.stderrBytes,
                                 outcome.stdoutTruncated, outcome.stderrTruncated, outcome.usage.wallMs, outcome.usage.cpuMs,
                                 outcome.usage.memoryPeakBytes, Millis.of(outcome.finishedAt),
                                 JSON.encode(outcome.weakerIsolation), executionID])
            if db.changesCount == 0 { try Self.requireStatus(db, executionID, .running, to: outcome.status.rawValue) }
            if outcome.keepsStoredOutput {
                // The disk had no room for the rest: the output stored while it ran stays, and a
                // stream is marked truncated when less was kept than was written.
                for (stream, column, written) in [(OutputPieces.Stream.stdout, "stdout_truncated", outcome.stdoutBytes),
                                                  (.stderr, "stderr_truncated", outcome.stderrBytes)]
                where try OutputPieces.end(db, executionID, stream) < written {
                    try db.execute(sql: "UPDATE execution SET \(column) = 1 WHERE id = ?", arguments: [executionID])
                }
            } else {
                try OutputPieces.replace(db, executionID, .stdout, from: outcome.stdoutOffset, with: outcome.stdout)
                try OutputPieces.replace(db, executionID, .stderr, from: outcome.stderrOffset, with: outcome.stderr)
            }
            return try Self.fetchExecution(db, id: executionID, withOutput: false)!
        }
    }

    public func cancel(executionID: Int64, now: Date) async throws -> Execution {
        try await write { db in
            guard let current = try Self.fetchExecution(db, id: executionID) else {
                throw StoreError.notFound("execution \(executionID)")
            }
            switch current.status {
            case .pending:
                try db.execute(sql: """
                    UPDATE execution SET status = 'CANCELLED', verdict = 'cancelled', reason = 'cancelled before it started',
                      finished_at = ?
                    WHERE id = ? AND status = 'PENDING'
                    """, arguments: [Millis.of(now), executionID])
            case .running:
                try db.execute(sql: "UPDATE execution SET cancel_requested = 1 WHERE id = ? AND status = 'RUNNING'",
                               arguments: [executionID])
            case .success, .failed, .cancelled, .timedOut:
                throw StoreError.invalidTransition(executionID: executionID, from: current.status,
                                                   to: ExecutionStatus.cancelled.rawValue)
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
                ids = try Int64.fetchAll(db, sql: "SELECT id FROM execution WHERE status = 'RUNNING' AND worker = ? ORDER BY id",
                                         arguments: [worker])
            } else {
                ids = try Int64.fetchAll(db, sql: "SELECT id FROM execution WHERE status = 'RUNNING' ORDER BY id")
            }
            for id in ids {
                try db.execute(sql: """
                    UPDATE execution SET status = 'FAILED', verdict = 'interrupted', reason = ?, finished_at = ?,
                      lease_deadline = NULL
                    WHERE id = ? AND status = 'RUNNING'
                    """, arguments: [reason, Millis.of(now), id])
            }
            return try ids.compactMap { try Self.fetchExecution(db, id: $0) }
        }
    }

    public func execution(id: Int64) async throws -> Execution? {
        try await read { db in try Self.fetchExecution(db, id: id) }
    }

    public func output(executionID: Int64, stdoutFrom: Int64, stderrFrom: Int64, limit: Int) async throws -> OutputSlice? {
        try await read { db in
            guard let execution = try Self.fetchExecution(db, id: executionID, withOutput: false) else { return nil }
            let storedStdout = try OutputPieces.end(db, executionID, .stdout)
            let storedStderr = try OutputPieces.end(db, executionID, .stderr)
            // Both streams get half of the limit; what one does not need goes to the other.
            let limit = max(0, limit)
            let stdoutLeft = max(0, storedStdout - stdoutFrom), stderrLeft = max(0, storedStderr - stderrFrom)
            let stderrShare = Int(min(stderrLeft, Int64(limit / 2)))
            let stdoutTake = Int(min(stdoutLeft, Int64(limit - stderrShare)))
            let stderrTake = Int(min(stderrLeft, Int64(limit - stdoutTake)))
            return OutputSlice(
                execution: execution,
                stdout: try OutputPieces.read(db, executionID, .stdout, from: stdoutFrom, limit: stdoutTake),
                stderr: try OutputPieces.read(db, executionID, .stderr, from: stderrFrom, limit: stderrTake),
                storedStdout: storedStdout, storedStderr: storedStderr)
        }
    }

    public func executions(_ query: ExecutionQuery) async throws -> ExecutionPage {
        let (sql, arguments, limit) = Self.listing(query)
        return try await read { db in
            // A time range that holds nothing is answered from the created_at index at once,
            // instead of walking the primary key through every row looking for a match.
            if query.createdAfter != nil || query.createdBefore != nil {
                let after = query.createdAfter.map(Millis.of) ?? Int64.min
                let before = query.createdBefore.map(Millis.of) ?? Int64.max
                let any = try Int.fetchOne(db, sql: """
                    SELECT 1 FROM execution INDEXED BY execution_created WHERE created_at >= ? AND created_at < ? LIMIT 1
                    """, arguments: [after, before])
                if any == nil { return ExecutionPage(executions: [], nextCursor: nil) }
            }
            let rows = try Row.fetchAll(db, sql: sql, arguments: arguments)
            var page = rows.prefix(limit).map(Records.execution)
            if query.withOutput {
                let output = try OutputPieces.all(db, page.map(\.id))
                for i in page.indices {
                    if let both = output[page[i].id] { (page[i].stdout, page[i].stderr) = both }
                }
            }
            // One row more than the page was asked for: a further page exists.
            return ExecutionPage(executions: Array(page), nextCursor: rows.count > limit ? page.last?.id : nil)
        }
    }

    /// The statement `executions(_:)` runs: the query's filters, newest first, one row more
    /// than the page (capped to `ExecutionQuery.maximumLimit`) to know whether a next page exists.
    static func listing(_ query: ExecutionQuery) -> (sql: String, arguments: StatementArguments, limit: Int) {
        var conditions = Conditions()
        conditions.add("job_id = ?", query.jobID)
        conditions.add("tenant = ?", query.tenant)
        if !query.statuses.isEmpty {
            conditions.add("status IN (\(query.statuses.map { _ in "?" }.joined(separator: ", ")))",
                           arguments: StatementArguments(query.statuses.map(\.rawValue)))
        }
        if !query.verdicts.isEmpty {
            conditions.add("verdict IN (\(query.verdicts.map { _ in "?" }.joined(separator: ", ")))",
                           arguments: StatementArguments(query.verdicts.map(\.rawValue)))
        }
        conditions.add("created_at >= ?", query.createdAfter.map(Millis.of))
        conditions.add("created_at < ?", query.createdBefore.map(Millis.of))
        conditions.add("id < ?", query.before)
        conditions.add("id > ?", query.oldestFirst ? query.after : nil)
        let limit = max(1, min(ExecutionQuery.maximumLimit, query.limit))
        let order = query.oldestFirst ? "ASC" : "DESC"
        return ("\(Records.executionSelect)\(conditions.sql) ORDER BY id \(order) LIMIT \(limit + 1)", conditions.arguments, limit)
    }

    public func pendingCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM execution WHERE status = 'PENDING'") ?? 0 }
    }

    /// Deletes in transactions of at most `pruneBatch` rows, each guarded on the status (a
    /// PENDING or RUNNING execution is never deleted), so the writer is never held for long.
    public func prune(keepPerJob: Int?, olderThan: Date?) async throws -> Int {
        var deleted = 0
        if let keepPerJob {
            // Finished executions only get further from their job's newest, so the ids found in
            // this snapshot stay candidates while the batches run.
            let ids = try await read { db in
                try Int64.fetchAll(db, sql: """
                    SELECT id FROM (
                      SELECT id, ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY id DESC) AS n
                      FROM execution WHERE status NOT IN ('PENDING', 'RUNNING'))
                    WHERE n > ?
                    """, arguments: [max(0, keepPerJob)])
            }
            var start = 0
            while start < ids.count {
                let batch = Array(ids[start..<min(ids.count, start + Self.pruneBatch)])
                start += batch.count
                deleted += try await write { db in
                    try db.execute(sql: """
                        DELETE FROM execution
                        WHERE id IN (\(batch.map { _ in "?" }.joined(separator: ", "))) AND status NOT IN ('PENDING', 'RUNNING')
                        """, arguments: StatementArguments(batch))
                    return db.changesCount
                }
            }
        }
        if let olderThan {
            let cutoff = Millis.of(olderThan)
            while true {
                let count = try await write { db in
                    try db.execute(sql: """
                        DELETE FROM execution WHERE id IN (
                          SELECT id FROM execution
                          WHERE finished_at < ? AND status NOT IN ('PENDING', 'RUNNING') LIMIT ?)
                        """, arguments: [cutoff, Self.pruneBatch])
                    return db.changesCount
                }
                deleted += count
                if count < Self.pruneBatch { break }
            }
        }
        return deleted
    }

    // MARK: Checks

    /// What `PRAGMA integrity_check` finds in the database: empty when the file is sound.
    public func integrityProblems() async throws -> [String] {
        try await read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").filter { $0 != "ok" } }
    }

    // MARK: Backup

    /// Copies the database at `source` into the new file `target` with SQLite's online backup:
    /// a consistent snapshot taken while a server may be writing (in WAL mode, the copy's read
    /// transaction never waits for the writer). A missing `source` is refused, never created;
    /// it is only read. (Not through a read-only connection: one leaves the -wal and -shm files
    /// it had to create behind, owned by whoever ran the backup — root's would lock a server
    /// running as another user out — while the last ordinary connection removes them.)
    /// The copy is made a single self-contained file (rollback journal), then checked with
    /// `PRAGMA integrity_check`; its row counts are returned. `target` must not exist.
    /// Failures are `StoreError`s naming the file and SQLite's words.
    public static func backup(from source: String, to target: String) throws(StoreError) -> (jobs: Int, executions: Int) {
        guard FileManager.default.fileExists(atPath: source) else {
            throw .notFound("the database \(source)")
        }
        var configuration = Configuration()
        configuration.label = "confine-backup"
        configuration.busyMode = .timeout(10)
        let from: DatabaseQueue
        do { from = try DatabaseQueue(path: source, configuration: configuration) } catch {
            throw storeError(error, path: source)
        }
        defer { try? from.close() }
        do {
            let tables = try from.read { db in
                try Set(String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'"))
            }
            guard tables.isSuperset(of: ["job", "execution"]) else {
                throw StoreError.invalid("\(source) is not a Confine database (it has no job and execution tables)")
            }
        } catch {
            throw storeError(error, path: source)
        }
        var copyConfiguration = Configuration()
        copyConfiguration.label = "confine-backup-copy"
        let copy: DatabaseQueue
        do { copy = try DatabaseQueue(path: target, configuration: copyConfiguration) } catch {
            throw storeError(error, path: target)
        }
        defer { try? copy.close() }
        do {
            try from.backup(to: copy)
        } catch {
            throw storeError(error, path: source)
        }
        do {
            return try copy.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA journal_mode = DELETE")
                let problems = try String.fetchAll(db, sql: "PRAGMA integrity_check")
                guard problems == ["ok"] else {
                    throw StoreError.unavailable("the copy \(target) fails its integrity check: \(problems.prefix(5).joined(separator: "; "))")
                }
                let jobs = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job") ?? 0
                let executions = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM execution") ?? 0
                return (jobs, executions)
            }
        } catch {
            throw storeError(error, path: target)
        }
    }

    // MARK: Helpers

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.read(body) } catch { throw Self.storeError(error, path: path) }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.write(body) } catch {
            let failure = Self.storeError(error, path: path)
            if case .diskFull = failure { reserve.release() }
            throw failure
        }
    }

    /// Refuses new data while the disk is full (see `DiskReserve`). Called on the store's own
    /// queues: while full, it asks the filesystem.
    private func admitNewData() throws(StoreError) {
        guard reserve.admits() else { throw .diskFull(path: path) }
    }

    public func refusalOfNewData() async -> StoreError? {
        let reserve = self.reserve
        if reserve.isHeld { return nil }
        let admits = (try? await pool.read { _ in reserve.admits() }) ?? false
        return admits ? nil : .diskFull(path: path)
    }

    static func fetchJob(_ db: Database, id: Int64) throws -> Job? {
        try Row.fetchOne(db, sql: Records.jobSelect + " WHERE id = ?", arguments: [id]).map(Records.job)
    }

    /// An execution, with its output unless `withOutput` is false.
    static func fetchExecution(_ db: Database, id: Int64, withOutput: Bool = true) throws -> Execution? {
        guard var execution = try Row.fetchOne(db, sql: Records.executionSelect + " WHERE id = ?", arguments: [id])
            .map(Records.execution) else { return nil }
        if withOutput, let both = try OutputPieces.all(db, [id])[id] {
            (execution.stdout, execution.stderr) = both
        }
        return execution
    }

    /// A PENDING or RUNNING execution of a job (the argument). No ORDER BY: it would make
    /// SQLite walk all the job's executions in id order instead of seeking the few active ones.
    static let activeExecutionSQL = """
        SELECT id FROM execution WHERE job_id = ? AND status IN ('PENDING', 'RUNNING') LIMIT 1
        """

    /// A PENDING or RUNNING execution of a job, if any.
    static func activeExecution(_ db: Database, jobID: Int64) throws -> Int64? {
        try Int64.fetchOne(db, sql: activeExecutionSQL, arguments: [jobID])
    }

    /// Throws the precise reason an update guarded on `status` changed nothing.
    static func requireStatus(_ db: Database, _ id: Int64, _ status: ExecutionStatus, to target: String) throws {
        guard let current = try String.fetchOne(db, sql: "SELECT status FROM execution WHERE id = ?", arguments: [id]) else {
            throw StoreError.notFound("execution \(id)")
        }
        guard let from = ExecutionStatus(rawValue: current) else {
            throw StoreError.invalid("execution \(id) has an unknown status \"\(current)\"")
        }
        if from != status { throw StoreError.invalidTransition(executionID: id, from: from, to: target) }
    }

    /// Every failure as a StoreError with words an operator can act on.
    static func storeError(_ error: any Error, path: String) -> StoreError {
        if let e = error as? StoreError { return e }
        if error is CancellationError { return .unavailable("the request was cancelled before \(path) answered") }
        guard let e = error as? DatabaseError else { return .unavailable("\(path): \(error)") }
        let detail = e.message.map { " (\($0))" } ?? ""
        switch e.resultCode {
        case .SQLITE_FULL:
            return .diskFull(path: path)
        case .SQLITE_BUSY:
            return .unavailable("the database \(path) is busy: another process holds its write lock\(detail)")
        case .SQLITE_LOCKED:
            return .unavailable("the database \(path) is locked by another connection\(detail)")
        case .SQLITE_READONLY:
            return .unavailable("the database \(path) is read-only\(detail)")
        case .SQLITE_CANTOPEN:
            return .unavailable("cannot open the database \(path)\(detail); check the path and its permissions")
        case .SQLITE_PERM, .SQLITE_AUTH:
            return .unavailable("permission denied on the database \(path)\(detail)")
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return .unavailable("\(path) is corrupt or not a Confine database\(detail)")
        case .SQLITE_IOERR:
            return .unavailable("I/O error on the database \(path)\(detail)")
        case .SQLITE_NOMEM:
            return .unavailable("out of memory using the database \(path)")
        case .SQLITE_INTERRUPT:
            return .unavailable("an operation on the database \(path) was interrupted")
        case .SQLITE_CONSTRAINT:
            switch e.extendedResultCode {
            case .SQLITE_CONSTRAINT_UNIQUE, .SQLITE_CONSTRAINT_PRIMARYKEY:
                return .conflict("already stored\(detail)")
            case .SQLITE_CONSTRAINT_FOREIGNKEY:
                return .notFound("the job this refers to\(detail)")
            default:
                return .invalid("the change breaks a rule of the database\(detail)")
            }
        default:
            return .unavailable("database error on \(path): \(e.resultCode)\(detail)")
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

    /// `empty` is the value of a missing text, of the common `[]` / `{}` (without building a
    /// decoder: most rows have no arguments and no environment) and of a text that does not
    /// decode.
    static func decode<T: Decodable>(_ type: T.Type, _ text: String?, empty: T) -> T {
        guard let text, text != "[]", text != "{}" else { return empty }
        return (try? JSONDecoder().decode(T.self, from: Data(text.utf8))) ?? empty
    }
}
