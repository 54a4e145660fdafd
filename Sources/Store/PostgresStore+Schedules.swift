import Domain
import Foundation
import PostgresNIO

// Schedules on PostgreSQL, as SQLite's: the scheduled jobs by next run, the due ones, and a slot
// claimed (unique per job and slot time) in the transaction that queues its execution — exactly
// once across nodes: the next slot moves by compare-and-set, the slot's row is the unique key,
// and the execution is queued under the submission lock every node's enqueue takes.

extension PostgresStore {
    public func scheduledJobs(tenant: String?) async throws -> [Job] {
        var q = SQL(Records.jobSelect + " WHERE schedule_cron IS NOT NULL")
        if let tenant { q.append(" AND tenant = \(q.bind(tenant))") }
        q.append(" ORDER BY next_run_at IS NULL, next_run_at, id")
        return try await rows(q.query).map(PostgresRecords.job)
    }

    public func dueSchedules(now: Date, limit: Int) async throws -> [Job] {
        var q = SQL(Records.jobSelect)
        q.append("""
             WHERE next_run_at IS NOT NULL AND next_run_at <= \(q.bind(Millis.of(now))) AND schedule_enabled
             ORDER BY next_run_at, id LIMIT \(q.bind(Int64(max(1, limit))))
            """)
        return try await rows(q.query).map(PostgresRecords.job)
    }

    public func nextScheduledRun() async throws -> Date? {
        try await rows("SELECT MIN(next_run_at) FROM job WHERE next_run_at IS NOT NULL AND schedule_enabled")
            .first?.decode(Int64?.self).map(Millis.date)
    }

    public func fireSlot(_ firing: SlotFiring, queueLimit: Int) async throws -> SlotResult {
        let logger = self.logger
        return try await transaction { connection in
            // The submission lock first (as enqueue and deleteJob take it, before any job row):
            // the overlap and the enqueue's checks are exact across nodes, and no lock order
            // can deadlock with a deletion.
            try await PostgresLocks.take(.enqueue, connection, logger)
            // Compare-and-set of the next slot: a firing of the same view on another node
            // waits for this row, then finds it changed.
            var move = SQL()
            move.append("""
                UPDATE job SET next_run_at = \(move.bind(firing.nextRunAt.map(Millis.of)))
                WHERE id = \(move.bind(firing.jobID)) AND schedule_enabled AND schedule_cron IS NOT NULL
                  AND next_run_at = \(move.bind(Millis.of(firing.expectedNextRunAt)))
                RETURNING id
                """)
            guard try await connection.changed(move.query, logger) == 1 else { return .scheduleChanged }
            guard let slot = firing.slot else { return .moved }
            let slotMs = Millis.of(slot)
            var claim = SQL()
            claim.append("""
                INSERT INTO schedule_slot (job_id, slot_at, claimed_at, outcome)
                VALUES (\(claim.bind(firing.jobID)), \(claim.bind(slotMs)), \(claim.bind(Millis.now)), 'claimed')
                ON CONFLICT (job_id, slot_at) DO NOTHING RETURNING job_id
                """)
            guard try await connection.changed(claim.query, logger) == 1 else { return .alreadyClaimed }
            var last = SQL()
            last.append("UPDATE job SET last_slot_at = \(last.bind(slotMs)) WHERE id = \(last.bind(firing.jobID))")
            try await connection.query(last.query, logger: logger)

            func skip(_ reason: String) async throws -> SlotResult {
                var q = SQL()
                q.append("""
                    UPDATE schedule_slot SET outcome = 'skipped', reason = \(q.bind(reason))
                    WHERE job_id = \(q.bind(firing.jobID)) AND slot_at = \(q.bind(slotMs))
                    """)
                try await connection.query(q.query, logger: logger)
                var job = SQL()
                job.append("""
                    UPDATE job SET last_skipped_at = \(job.bind(slotMs)), last_skip_reason = \(job.bind(reason))
                    WHERE id = \(job.bind(firing.jobID))
                    """)
                try await connection.query(job.query, logger: logger)
                return .skipped(reason)
            }
            guard let new = firing.execution else {
                return try await skip(firing.skipReason ?? "no execution could be made for the slot")
            }
            if firing.overlap == .skip, let active = try await Self.activeExecution(connection, jobID: firing.jobID, logger) {
                return try await skip("execution \(active) of the job was pending or running (overlap: skip)")
            }
            let execution: Execution
            do {
                execution = try await Self.insertExecution(connection, new, queueLimit: queueLimit, logger)
            } catch let error as StoreError {
                return try await skip(error.description)
            }
            var queued = SQL()
            queued.append("""
                UPDATE schedule_slot SET outcome = 'queued', execution_id = \(queued.bind(execution.id))
                WHERE job_id = \(queued.bind(firing.jobID)) AND slot_at = \(queued.bind(slotMs))
                """)
            try await connection.query(queued.query, logger: logger)
            try await Self.notify(connection, PostgresChannel.queued, logger)
            return .queued(execution)
        }
    }
}
