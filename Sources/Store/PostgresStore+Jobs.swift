import Domain
import Foundation
import PostgresNIO

// Jobs on PostgreSQL: created, read, listed, updated, deleted (never while one of their
// executions is PENDING or RUNNING). Unique names per tenant are the unique index's.

extension PostgresStore {
    public func createJob(_ job: NewJob) async throws -> Job {
        let logger = self.logger
        var q = SQL()
        let now = Millis.now
        q.append("""
            INSERT INTO job (name, script_type, script_content, policy, limits, concurrency, arguments, environment,
                             secret_environment, tenant, created_by, created_at, updated_at, files_index, files, outputs,
                             retry, callback)
            VALUES (\(q.bind(job.name)), \(q.bind(job.scriptType.rawValue)), \(q.bind(job.scriptContent)), \(q.bind(job.policy)),
                    \(q.bind(JSONText.encode(job.limits))), \(q.bind(job.concurrency.rawValue)), \(q.bind(JSONText.encode(job.arguments))),
                    \(q.bind(JSONText.encode(job.environment))), \(q.bind(JSONText.encode(job.secretEnvironment))),
                    \(q.bind(job.tenant ?? "")), \(q.bind(job.createdBy)), \(q.bind(now)), \(q.bind(now)),
                    \(q.bind(JSONText.encode(job.files.map(\.entry)))), \(q.bind(FileColumn.encode(job.files))),
                    \(q.bind(JSONText.encode(job.outputs))), \(q.bind(job.retry.map { JSONText.encode($0) })),
                    \(q.bind(job.callback.map { JSONText.encode($0) })))
            RETURNING id
            """)
        let query = q.query
        let schedule = job.schedule
        do {
            return try await transaction { connection in
                let id = try await connection.first(query, logger)!.decode(Int64.self)
                if let schedule { try await Self.storeSchedule(connection, jobID: id, schedule, logger) }
                return try await Self.fetchJob(connection, id: id, logger)!
            }
        } catch StoreError.conflict {
            throw StoreError.conflict("a job named \(job.name) already exists")
        }
    }

    /// Writes a job's schedule columns (`scheduleAssignments`) in the caller's transaction.
    static func storeSchedule(_ connection: PostgresConnection, jobID: Int64, _ schedule: JobSchedule?,
                              _ logger: Logger) async throws {
        var set = SQL()
        scheduleAssignments(&set, schedule)
        set.append(" WHERE id = \(set.bind(jobID))")
        try await connection.query(set.query, logger: logger)
    }

    static func fetchJob(_ connection: PostgresConnection, id: Int64, _ logger: Logger) async throws -> Job? {
        var q = SQL(Records.jobSelect)
        q.append(" WHERE id = \(q.bind(id))")
        return try await connection.first(q.query, logger).map(PostgresRecords.job)
    }

    public func job(id: Int64) async throws -> Job? {
        var binds = PostgresBindings()
        binds.append(id)
        return try await rows(PostgresStatements.JobByID.self, binds).first.map(PostgresRecords.job)
    }

    public func job(named name: String) async throws -> Job? {
        var q = SQL(Records.jobSelect)
        q.append(" WHERE name = \(q.bind(name)) ORDER BY id LIMIT 1")
        return try await rows(q.query).first.map(PostgresRecords.job)
    }

    public func jobs(named name: String) async throws -> [Job] {
        var q = SQL(Records.jobSelect)
        q.append(" WHERE name = \(q.bind(name)) ORDER BY id")
        return try await rows(q.query).map(PostgresRecords.job)
    }

    /// `WHERE` with the filters given, for job listings.
    private static func jobFilter(_ q: inout SQL, scriptType: ScriptType?, tenant: String?, afterID: Int64?) {
        var clauses: [String] = []
        if let scriptType { clauses.append("script_type = \(q.bind(scriptType.rawValue))") }
        if let tenant { clauses.append("tenant = \(q.bind(tenant))") }
        if let afterID { clauses.append("id > \(q.bind(afterID))") }
        if !clauses.isEmpty { q.append(" WHERE " + clauses.joined(separator: " AND ")) }
    }

    public func jobs(scriptType: ScriptType?, tenant: String?) async throws -> [Job] {
        var q = SQL(Records.jobSelect)
        Self.jobFilter(&q, scriptType: scriptType, tenant: tenant, afterID: nil)
        q.append(" ORDER BY id")
        return try await rows(q.query).map(PostgresRecords.job)
    }

    public func jobs(scriptType: ScriptType?, tenant: String?, afterID: Int64?, limit: Int) async throws -> [Job] {
        var q = SQL(Records.jobSelect)
        Self.jobFilter(&q, scriptType: scriptType, tenant: tenant, afterID: afterID)
        q.append(" ORDER BY id LIMIT \(q.bind(max(1, limit)))")
        return try await rows(q.query).map(PostgresRecords.job)
    }

    public func jobIDs(scriptType: ScriptType?, tenant: String?, afterID: Int64?, limit: Int) async throws -> [Int64] {
        var q = SQL("SELECT id FROM job")
        Self.jobFilter(&q, scriptType: scriptType, tenant: tenant, afterID: afterID)
        q.append(" ORDER BY id LIMIT \(q.bind(max(1, limit)))")
        return try await rows(q.query).map { try $0.decode(Int64.self) }
    }

    public func updateJob(id: Int64, _ patch: JobPatch) async throws -> Job {
        let logger = self.logger
        do {
            return try await transaction { connection in
                var lock = SQL("SELECT 1 FROM job WHERE id = ")
                lock.append("\(lock.bind(id)) FOR UPDATE")
                _ = try await connection.first(lock.query, logger)
                guard var job = try await Self.fetchJob(connection, id: id, logger) else { throw StoreError.notFound("job \(id)") }
                patch.applyColumns(to: &job)
                var q = SQL()
                q.append("""
                    UPDATE job SET name = \(q.bind(job.name)), script_type = \(q.bind(job.scriptType.rawValue)),
                      script_content = \(q.bind(job.scriptContent)), policy = \(q.bind(job.policy)),
                      limits = \(q.bind(JSONText.encode(job.limits))), concurrency = \(q.bind(job.concurrency.rawValue)),
                      arguments = \(q.bind(JSONText.encode(job.arguments))), environment = \(q.bind(JSONText.encode(job.environment))),
                      secret_environment = \(q.bind(JSONText.encode(job.secretEnvironment))), updated_at = \(q.bind(Millis.now))
                    """)
                if let outputs = patch.outputs { q.append(", outputs = \(q.bind(JSONText.encode(outputs)))") }
                if let files = patch.files {
                    q.append(", files_index = \(q.bind(JSONText.encode(files.map(\.entry)))), files = \(q.bind(FileColumn.encode(files)))")
                }
                if let retry = patch.retry { q.append(", retry = \(q.bind(retry.map { JSONText.encode($0) }))") }
                if let callback = patch.callback { q.append(", callback = \(q.bind(callback.map { JSONText.encode($0) }))") }
                q.append(" WHERE id = \(q.bind(id))")
                try await connection.query(q.query, logger: logger)
                if let schedule = patch.schedule { try await Self.storeSchedule(connection, jobID: id, schedule, logger) }
                return try await Self.fetchJob(connection, id: id, logger)!
            }
        } catch StoreError.conflict {
            throw StoreError.conflict("a job named \(patch.name ?? "") already exists")
        }
    }

    public func deleteJob(id: Int64) async throws {
        let logger = self.logger
        try await transaction { connection in
            guard let job = try await Self.fetchJob(connection, id: id, logger) else { throw StoreError.notFound("job \(id)") }
            // The same lock as submissions: no run of this job can be accepted meanwhile.
            try await PostgresLocks.take(.enqueue, connection, logger)
            if let active = try await Self.activeExecution(connection, jobID: id, logger) {
                throw StoreError.conflict("""
                    job \(job.name) (\(id)) has execution \(active) pending or running; cancel it or let it end before \
                    deleting the job
                    """)
            }
            var q = SQL("DELETE FROM job WHERE id = ")
            q.append(q.bind(id))
            try await connection.query(q.query, logger: logger)
        }
    }

    /// `UPDATE job SET …` of a schedule set (or, nil, removed), as SQLite's `storeSchedule`:
    /// the history of its slots (last slot, last skip) is kept while it has one; a disabled
    /// schedule has no next slot. The caller appends the WHERE clause.
    static func scheduleAssignments(_ q: inout SQL, _ schedule: JobSchedule?) {
        guard let schedule else {
            q.append("""
                UPDATE job SET schedule_cron = NULL, schedule_timezone = NULL, schedule_overlap = NULL, schedule_catch_up = NULL,
                  schedule_enabled = false, next_run_at = NULL, last_slot_at = NULL, last_skipped_at = NULL, last_skip_reason = NULL
                """)
            return
        }
        q.append("""
            UPDATE job SET schedule_cron = \(q.bind(schedule.cron)), schedule_timezone = \(q.bind(schedule.timezone)),
              schedule_overlap = \(q.bind(schedule.overlap.rawValue)), schedule_catch_up = \(q.bind(schedule.catchUp.rawValue)),
              schedule_enabled = \(q.bind(schedule.enabled)),
              next_run_at = \(q.bind(schedule.enabled ? schedule.nextRunAt.map(Millis.of) : nil))
            """)
    }

    /// A PENDING or RUNNING execution of a job, if any.
    static func activeExecution(_ connection: PostgresConnection, jobID: Int64, _ logger: Logger) async throws -> Int64? {
        var q = SQL("SELECT id FROM execution WHERE job_id = ")
        q.append("\(q.bind(jobID)) AND status IN ('PENDING', 'RUNNING') LIMIT 1")
        return try await connection.first(q.query, logger)?.decode(Int64.self)
    }

    public func sealedValueSample() async throws -> String? {
        let text = try await rows("SELECT secret_environment FROM job WHERE secret_environment <> '{}' LIMIT 1").first?.decode(String.self)
        return JSONText.decode([String: String].self, text, empty: [:]).values.sorted().first
    }

    public func jobFiles(id: Int64) async throws -> [InputFile] {
        var q = SQL("SELECT files FROM job WHERE id = ")
        q.append(q.bind(id))
        return FileColumn.decode(try await rows(q.query).first?.decode(Data?.self))
    }

    public func executionFiles(id: Int64) async throws -> [InputFile] {
        var q = SQL("SELECT files FROM execution WHERE id = ")
        q.append(q.bind(id))
        return FileColumn.decode(try await rows(q.query).first?.decode(Data?.self))
    }
}

/// The advisory locks Confine's nodes share (transaction-scoped: released at commit or rollback).
enum PostgresLocks {
    /// Submissions and job deletions: the rules checked across nodes (forbid, max_active, the
    /// queue bound) are exact because every submission checks and inserts under this lock.
    case enqueue
    /// Claims of a `queue` job's runs: one node at a time per job.
    case queueJob(Int64)

    /// Takes the lock for the rest of the transaction.
    static func take(_ lock: PostgresLocks, _ connection: PostgresConnection, _ logger: Logger) async throws {
        switch lock {
        case .enqueue:
            try await connection.query("SELECT pg_advisory_xact_lock(\(Int32(0x636f)), \(Int32(1)))", logger: logger)
        case .queueJob(let id):
            try await connection.query("SELECT pg_advisory_xact_lock(\(Int32(0x636f) + 1), \(Int32(truncatingIfNeeded: id)))", logger: logger)
        }
    }

    /// Takes the lock if no other transaction holds it; false when one does.
    static func tryTake(_ lock: PostgresLocks, _ connection: PostgresConnection, _ logger: Logger) async throws -> Bool {
        let key: (Int32, Int32)
        switch lock {
        case .enqueue: key = (0x636f, 1)
        case .queueJob(let id): key = (0x636f + 1, Int32(truncatingIfNeeded: id))
        }
        let row = try await connection.first("SELECT pg_try_advisory_xact_lock(\(key.0), \(key.1))", logger)
        return try row?.decode(Bool.self) ?? false
    }
}
