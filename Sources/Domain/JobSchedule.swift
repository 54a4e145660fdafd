import Foundation

/// A job's schedule: the cron expression it fires on, in a time zone of the system's tz
/// database, and what a slot does when the job is busy or was missed.
///
/// Each slot fires at most once: the engine claims it in the store with the unique key (job,
/// slot time) in the transaction that queues its execution (`ScheduleStore.fireSlot`).
public struct JobSchedule: Sendable, Equatable, Codable {
    /// The cron expression (`CronExpression`), as given.
    public var cron: String
    /// An identifier of the tz database (`Europe/Paris`); `UTC` by default.
    public var timezone: String
    public var overlap: ScheduleOverlap
    public var catchUp: ScheduleCatchUp
    /// A disabled schedule keeps its settings and fires nothing (`next_run_at` null).
    public var enabled: Bool
    /// The next slot, nil when disabled (or when the expression never fires again).
    public var nextRunAt: Date?
    /// The last slot that fired (an execution was queued or a skip recorded).
    public var lastSlotAt: Date?
    /// The last slot skipped (`overlap: skip` while a run was pending or running, or a slot the
    /// store refused: queue full, the policy gone), and why.
    public var lastSkippedAt: Date?
    public var lastSkipReason: String?

    public init(cron: String, timezone: String = "UTC", overlap: ScheduleOverlap = .skip, catchUp: ScheduleCatchUp = .none,
                enabled: Bool = true, nextRunAt: Date? = nil, lastSlotAt: Date? = nil, lastSkippedAt: Date? = nil,
                lastSkipReason: String? = nil) {
        self.cron = cron
        self.timezone = timezone
        self.overlap = overlap
        self.catchUp = catchUp
        self.enabled = enabled
        self.nextRunAt = nextRunAt
        self.lastSlotAt = lastSlotAt
        self.lastSkippedAt = lastSkippedAt
        self.lastSkipReason = lastSkipReason
    }

    /// The expression parsed and the zone found; the error names the member (`schedule.cron`,
    /// `schedule.timezone`) and the reason.
    public func parsed() throws(ScheduleError) -> (CronExpression, TimeZone) {
        let expression: CronExpression
        do { expression = try CronExpression(parsing: cron) } catch { throw .cron(error) }
        guard let zone = Self.zone(timezone) else { throw .timezone(timezone) }
        return (expression, zone)
    }

    /// Where the system keeps its tz database.
    public static let zoneDirectory = ProcessInfo.processInfo.environment["TZDIR"] ?? "/usr/share/zoneinfo"

    /// The zone of an identifier of the system's tz database (`UTC` always), nil for an unknown one.
    public static func zone(_ identifier: String) -> TimeZone? {
        if identifier == "UTC" { return TimeZone(identifier: "UTC") }
        // Only names of the database: no path tricks, no POSIX TZ strings or offsets ("GMT+1").
        let pattern = #"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9][A-Za-z0-9_+\-]*)*$"#
        guard identifier.range(of: pattern, options: .regularExpression) != nil,
              FileManager.default.fileExists(atPath: zoneDirectory + "/" + identifier) else { return nil }
        return TimeZone(identifier: identifier)
    }
}

/// What a slot does while an execution of the job is pending or running.
public enum ScheduleOverlap: String, Sendable, Codable, CaseIterable {
    /// The slot is skipped, and recorded (`last_skipped_at`).
    case skip
    /// The slot's execution is queued and runs after the others (the `queue` concurrency rule).
    case queue
    /// The slot's execution runs alongside (the `allow` concurrency rule).
    case allow

    /// The concurrency rule the slot's execution is stored with.
    public var concurrency: ConcurrencyRule {
        switch self {
        case .skip: return .forbid
        case .queue: return .queue
        case .allow: return .allow
        }
    }
}

/// What happens to the slots missed while no server ran (or the scheduler was late by more than
/// the grace period).
public enum ScheduleCatchUp: String, Sendable, Codable, CaseIterable {
    /// Missed slots are skipped; the schedule resumes at the next slot.
    case none
    /// The most recent missed slot runs once; the earlier ones are skipped.
    case last
}

/// Why a schedule was refused: the member and the reason.
public enum ScheduleError: Error, CustomStringConvertible, Equatable, Sendable {
    case cron(CronError)
    case timezone(String)

    public var field: String {
        switch self {
        case .cron: return "schedule.cron"
        case .timezone: return "schedule.timezone"
        }
    }

    public var description: String {
        switch self {
        case .cron(let error): return "schedule.cron: \(error.description)"
        case .timezone(let name):
            return "schedule.timezone: \"\(name)\" is not a time zone of the tz database (\(JobSchedule.zoneDirectory)); "
                + "use a name such as Europe/Paris, America/New_York or UTC"
        }
    }
}

/// What started an execution.
public enum ExecutionTrigger: String, Sendable, Codable, CaseIterable {
    /// A run of a job asked over the API (`POST /executions/{job_id}/run`, the CLI).
    case api
    /// An ad-hoc run (`POST /executions`: the script came with the request).
    case adHoc = "ad_hoc"
    /// One run of a batch (`POST /executions/batch`).
    case batch
    /// A slot of the job's schedule (`scheduled_for` is the slot).
    case schedule
    /// A retry of a failed attempt (`retry_of`, `attempt`).
    case retry
}
