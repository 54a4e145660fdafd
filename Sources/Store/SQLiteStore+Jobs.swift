import Domain
import Foundation
import GRDB

// Jobs: created, read by id and name, listed by type and tenant, updated, deleted (never while
// one of their executions is PENDING or RUNNING).

extension SQLiteStore {
    public func createJob(_ job: NewJob) async throws -> Job {
        try await write { db in
            try self.admitNewData()
            let now = Millis.now
            do {
                try db.cached("""
                    INSERT INTO job (name, script_type, script_content, policy, limits, concurrency, arguments, environment,
                                     secret_environment, tenant, created_by, created_at, updated_at, files_index, files, outputs)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """).execute(arguments: [job.name, job.scriptType.rawValue, job.scriptContent, job.policy, JSONText.encode(job.limits),
                                     job.concurrency.rawValue, JSONText.encode(job.arguments), JSONText.encode(job.environment),
                                     JSONText.encode(job.secretEnvironment), job.tenant ?? "", job.createdBy, now, now,
                                     JSONText.encode(job.files.map(\.entry)), FileColumn.encode(job.files), JSONText.encode(job.outputs)])
            } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
                throw StoreError.conflict("a job named \(job.name) already exists")
            }
            let id = db.lastInsertedRowID
            try Self.storeSchedule(db, jobID: id, job.schedule)
            if let retry = job.retry {
                try db.cached("UPDATE job SET retry = ? WHERE id = ?").execute(arguments: [JSONText.encode(retry), id])
            }
            if let callback = job.callback {
                try db.cached("UPDATE job SET callback = ? WHERE id = ?").execute(arguments: [JSONText.encode(callback), id])
            }
            return try Self.fetchJob(db, id: id)!
        }
    }

    public func job(id: Int64) async throws -> Job? {
        try await pointRead(singleStatement: true) { db in try Self.fetchJob(db, id: id) }
    }

    public func job(named name: String) async throws -> Job? {
        try await read { db in
            try Row.fetchOne(db.cached(Records.jobSelect + " WHERE name = ?"), arguments: [name]).map(Records.job)
        }
    }

    public func jobs(named name: String) async throws -> [Job] {
        try await read { db in
            try Row.fetchAll(db.cached(Records.jobSelect + " WHERE name = ? ORDER BY id"), arguments: [name]).map(Records.job)
        }
    }

    public func jobs(scriptType: ScriptType?, tenant: String?) async throws -> [Job] {
        var conditions = Conditions()
        conditions.add("script_type = ?", scriptType?.rawValue)
        conditions.add("tenant = ?", tenant)
        let sql = Records.jobSelect + conditions.sql + " ORDER BY id", arguments = conditions.arguments
        return try await read { db in try Row.fetchAll(db.cached(sql), arguments: arguments).map(Records.job) }
    }

    public func jobs(scriptType: ScriptType?, tenant: String?, afterID: Int64?, limit: Int) async throws -> [Job] {
        var conditions = Conditions()
        conditions.add("script_type = ?", scriptType?.rawValue)
        conditions.add("tenant = ?", tenant)
        conditions.add("id > ?", afterID)
        // The page size bound, not written into the SQL: one cached statement whatever the limit.
        let sql = Records.jobSelect + conditions.sql + " ORDER BY id LIMIT ?", arguments = conditions.arguments + [max(1, limit)]
        return try await read { db in try Row.fetchAll(db.cached(sql), arguments: arguments).map(Records.job) }
    }

    public func jobIDs(scriptType: ScriptType?, tenant: String?, afterID: Int64?, limit: Int) async throws -> [Int64] {
        var conditions = Conditions()
        conditions.add("script_type = ?", scriptType?.rawValue)
        conditions.add("tenant = ?", tenant)
        conditions.add("id > ?", afterID)
        let sql = "SELECT id FROM job" + conditions.sql + " ORDER BY id LIMIT ?", arguments = conditions.arguments + [max(1, limit)]
        return try await read { db in try Int64.fetchAll(db.cached(sql), arguments: arguments) }
    }

    public func updateJob(id: Int64, _ patch: JobPatch) async throws -> Job {
        try await write { db in
            try self.admitNewData()
            guard var job = try Self.fetchJob(db, id: id) else { throw StoreError.notFound("job \(id)") }
            patch.applyColumns(to: &job)
            if let outputs = patch.outputs {
                try db.cached("UPDATE job SET outputs = ? WHERE id = ?").execute(arguments: [JSONText.encode(outputs), id])
            }
            if let schedule = patch.schedule {
                try Self.storeSchedule(db, jobID: id, schedule)
            }
            if let retry = patch.retry {
                try db.cached("UPDATE job SET retry = ? WHERE id = ?").execute(arguments: [retry.map(JSONText.encode), id])
            }
            if let callback = patch.callback {
                try db.cached("UPDATE job SET callback = ? WHERE id = ?").execute(arguments: [callback.map(JSONText.encode), id])
            }
            if let files = patch.files {
                try db.cached("UPDATE job SET files_index = ?, files = ? WHERE id = ?")
                    .execute(arguments: [JSONText.encode(files.map(\.entry)), FileColumn.encode(files), id])
            }
            do {
                try db.cached("""
                    UPDATE job SET name = ?, script_type = ?, script_content = ?, policy = ?, limits = ?, concurrency = ?,
                    arguments = ?, environment = ?, secret_environment = ?, updated_at = ? WHERE id = ?
                    """).execute(arguments: [job.name, job.scriptType.rawValue, job.scriptContent, job.policy, JSONText.encode(job.limits),
                                     job.concurrency.rawValue, JSONText.encode(job.arguments), JSONText.encode(job.environment),
                                     JSONText.encode(job.secretEnvironment), Millis.now, id])
            } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
                throw StoreError.conflict("a job named \(job.name) already exists")
            }
            return try Self.fetchJob(db, id: id)!
        }
    }

    public func deleteJob(id: Int64) async throws {
        // Its executions went with it (ON DELETE CASCADE): marked once committed.
        defer { deletionSentinel.touch() }
        try await write { db in
            guard let job = try Self.fetchJob(db, id: id) else { throw StoreError.notFound("job \(id)") }
            if let active = try Self.activeExecution(db, jobID: id) {
                throw StoreError.conflict("""
                    job \(job.name) (\(id)) has execution \(active) pending or running; cancel it or let it end before \
                    deleting the job
                    """)
            }
            try db.cached("DELETE FROM job WHERE id = ?").execute(arguments: [id])
        }
    }

    public func sealedValueSample() async throws -> String? {
        let text = try await read { db in
            try String.fetchOne(db, sql: "SELECT secret_environment FROM job WHERE secret_environment <> '{}' LIMIT 1")
        }
        return JSONText.decode([String: String].self, text, empty: [:]).values.sorted().first
    }

    public func jobFiles(id: Int64) async throws -> [InputFile] {
        try await read { db in
            FileColumn.decode(try Data.fetchOne(db.cached("SELECT files FROM job WHERE id = ?"), arguments: [id]))
        }
    }

    /// Asked once per run, almost always of an execution without files: a point read on the
    /// caller's thread (no hop to GRDB's pool) that brings the files when they are small; larger
    /// ones are read on the pool.
    public func executionFiles(id: Int64) async throws -> [InputFile] {
        let small = try await pointRead(singleStatement: true) { db -> (files: Data?, complete: Bool) in
            let row = try Row.fetchOne(db.cached("""
                SELECT CASE WHEN length(files) <= ? THEN files END, files IS NULL OR length(files) <= ? FROM execution WHERE id = ?
                """), arguments: [Self.pointReadBytes, Self.pointReadBytes, id])
            return (row?[0], row.map { $0[1] } ?? true)
        }
        if small.complete { return FileColumn.decode(small.files) }
        return try await read { db in
            FileColumn.decode(try Data.fetchOne(db.cached("SELECT files FROM execution WHERE id = ?"), arguments: [id]))
        }
    }
}

extension SQLiteStore {
    /// Sets (or, nil, removes) a job's schedule; the history of its slots (last slot, last
    /// skip) is kept while it has one.
    static func storeSchedule(_ db: Database, jobID: Int64, _ schedule: JobSchedule?) throws {
        guard let schedule else {
            try db.cached("""
                UPDATE job SET schedule_cron = NULL, schedule_timezone = NULL, schedule_overlap = NULL, schedule_catch_up = NULL,
                  schedule_enabled = 0, next_run_at = NULL, last_slot_at = NULL, last_skipped_at = NULL, last_skip_reason = NULL
                WHERE id = ?
                """).execute(arguments: [jobID])
            return
        }
        try db.cached("""
            UPDATE job SET schedule_cron = ?, schedule_timezone = ?, schedule_overlap = ?, schedule_catch_up = ?,
              schedule_enabled = ?, next_run_at = ? WHERE id = ?
            """).execute(arguments: [schedule.cron, schedule.timezone, schedule.overlap.rawValue, schedule.catchUp.rawValue,
                             schedule.enabled, schedule.enabled ? schedule.nextRunAt.map(Millis.of) : nil, jobID])
    }
}

/// Input files as a BLOB column: JSON of their paths, base64 contents and executable flags;
/// NULL for none.
enum FileColumn {
    static func encode(_ files: [InputFile]) -> Data? {
        files.isEmpty ? nil : try? JSONEncoder().encode(files)
    }

    static func decode(_ data: Data?) -> [InputFile] {
        guard let data, !data.isEmpty else { return [] }
        return (try? JSONDecoder().decode([InputFile].self, from: data)) ?? []
    }
}
