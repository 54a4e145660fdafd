import Domain
import Foundation
import GRDB

// Schedules: the scheduled jobs by next run, the due ones, and a slot claimed (unique per job
// and slot time) in the transaction that queues its execution.

extension SQLiteStore {
    public func scheduledJobs(tenant: String?) async throws -> [Job] {
        var conditions = Conditions()
        conditions.add("schedule_cron IS NOT NULL", arguments: [])
        conditions.add("tenant = ?", tenant)
        let sql = Records.jobSelect + conditions.sql + " ORDER BY next_run_at IS NULL, next_run_at, id"
        let arguments = conditions.arguments
        return try await read { db in try Row.fetchAll(db.cached(sql), arguments: arguments).map(Records.job) }
    }

    public func dueSchedules(now: Date, limit: Int) async throws -> [Job] {
        try await read { db in
            try Row.fetchAll(db.cached(Records.jobSelect + """
                 WHERE next_run_at IS NOT NULL AND next_run_at <= ? AND schedule_enabled = 1 ORDER BY next_run_at, id LIMIT ?
                """), arguments: [Millis.of(now), max(1, limit)]).map(Records.job)
        }
    }

    public func nextScheduledRun() async throws -> Date? {
        try await read { db in
            try Int64.fetchOne(db.cached("SELECT MIN(next_run_at) FROM job WHERE next_run_at IS NOT NULL AND schedule_enabled = 1"))
                .map(Millis.date)
        }
    }

    public func fireSlot(_ firing: SlotFiring, queueLimit: Int) async throws -> SlotResult {
        try await write { db in
            let current = try Int64.fetchOne(db.cached("""
                SELECT next_run_at FROM job WHERE id = ? AND schedule_enabled = 1 AND schedule_cron IS NOT NULL
                """), arguments: [firing.jobID])
            guard let current, current == Millis.of(firing.expectedNextRunAt) else { return .scheduleChanged }
            try db.cached("UPDATE job SET next_run_at = ? WHERE id = ?")
                .execute(arguments: [firing.nextRunAt.map(Millis.of), firing.jobID])
            guard let slot = firing.slot else { return .moved }
            let slotMs = Millis.of(slot), now = Millis.now
            try db.cached("""
                INSERT INTO schedule_slot (job_id, slot_at, claimed_at, outcome) VALUES (?, ?, ?, 'claimed')
                ON CONFLICT (job_id, slot_at) DO NOTHING
                """).execute(arguments: [firing.jobID, slotMs, now])
            guard db.changesCount == 1 else { return .alreadyClaimed }
            try db.cached("UPDATE job SET last_slot_at = ? WHERE id = ?").execute(arguments: [slotMs, firing.jobID])

            func skip(_ reason: String) throws -> SlotResult {
                try db.cached("UPDATE schedule_slot SET outcome = 'skipped', reason = ? WHERE job_id = ? AND slot_at = ?")
                    .execute(arguments: [reason, firing.jobID, slotMs])
                try db.cached("UPDATE job SET last_skipped_at = ?, last_skip_reason = ? WHERE id = ?")
                    .execute(arguments: [slotMs, reason, firing.jobID])
                return .skipped(reason)
            }
            guard let new = firing.execution else { return try skip(firing.skipReason ?? "no execution could be made for the slot") }
            if firing.overlap == .skip, let active = try Self.activeExecution(db, jobID: firing.jobID) {
                return try skip("execution \(active) of the job was pending or running (overlap: skip)")
            }
            if !self.reserve.admits() {
                return try skip("the database's disk was full")
            }
            let execution: Execution
            do {
                execution = try Self.insertExecution(db, new, queueLimit: queueLimit)
            } catch let error as StoreError {
                return try skip(error.description)
            }
            try db.cached("UPDATE schedule_slot SET outcome = 'queued', execution_id = ? WHERE job_id = ? AND slot_at = ?")
                .execute(arguments: [execution.id, firing.jobID, slotMs])
            return .queued(execution)
        }
    }
}
