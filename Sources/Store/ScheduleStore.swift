import Domain
import Foundation

/// Persistence of job schedules and their slots: what the engine's scheduler relies on.
///
/// A slot fires at most once: `fireSlot` claims it with the unique key (job, slot time) in the
/// same transaction that queues its execution (or records it skipped) and moves the schedule to
/// its next slot, guarded on the next slot the caller read — so a restart, a kill -9 in the
/// middle or another node running the same scheduler can never fire it twice. Methods throw
/// `StoreError`.
public protocol ScheduleStore: Sendable {
    /// The jobs with a schedule (enabled or not), of one tenant or all: enabled ones by next
    /// run, then the disabled ones, by id.
    func scheduledJobs(tenant: String?) async throws -> [Job]
    /// Enabled schedules whose next slot is at or before `now`, earliest first, `limit` at most.
    func dueSchedules(now: Date, limit: Int) async throws -> [Job]
    /// The earliest next slot of every enabled schedule (nil: none).
    func nextScheduledRun() async throws -> Date?
    /// Claims a slot and queues its execution, or records it skipped; see `SlotFiring`.
    func fireSlot(_ firing: SlotFiring, queueLimit: Int) async throws -> SlotResult
}

/// One step of a schedule: the slot to fire (if any) and the next slot to move to.
public struct SlotFiring: Sendable, Equatable {
    public var jobID: Int64
    /// The schedule's next slot as the caller read it: nothing is done if it changed since
    /// (another node fired it, or the schedule was edited).
    public var expectedNextRunAt: Date
    /// The slot to fire; nil when every due slot is skipped as missed (`catch_up: none` after
    /// downtime).
    public var slot: Date?
    /// The schedule's next slot afterwards (nil: it never fires again).
    public var nextRunAt: Date?
    /// The execution to queue for the slot (its trigger `schedule`, `scheduledFor` the slot);
    /// nil with `skipReason` when the engine could not make one (the job's policy is gone).
    public var execution: NewExecution?
    public var skipReason: String?
    /// `skip`: the slot is skipped while an execution of the job is pending or running.
    public var overlap: ScheduleOverlap

    public init(jobID: Int64, expectedNextRunAt: Date, slot: Date?, nextRunAt: Date?, execution: NewExecution?,
                skipReason: String? = nil, overlap: ScheduleOverlap) {
        self.jobID = jobID
        self.expectedNextRunAt = expectedNextRunAt
        self.slot = slot
        self.nextRunAt = nextRunAt
        self.execution = execution
        self.skipReason = skipReason
        self.overlap = overlap
    }
}

/// What became of a slot.
public enum SlotResult: Sendable, Equatable {
    /// Its execution was queued.
    case queued(Execution)
    /// It was recorded skipped (`last_skipped_at`), for this reason.
    case skipped(String)
    /// It had been claimed already (by an earlier run of this server or another node): nothing done.
    case alreadyClaimed
    /// The schedule's next slot was no longer the one read (fired elsewhere, edited, removed,
    /// disabled): nothing done.
    case scheduleChanged
    /// No slot was due to fire (missed slots skipped); the schedule moved on.
    case moved
}
