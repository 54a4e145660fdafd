/// A job's schedule as the server answers it (`Schedule` in the API document): the settings,
/// the next slot (RFC 3339 in UTC as every date of the API, `2026-03-29T01:00:00.000+00:00`) and
/// the last slot skipped, with why.
public struct WireJobSchedule: Codable, Sendable, Equatable {
    public var cron: String
    public var timezone: String
    /// `skip`, `queue` or `allow`.
    public var overlap: String
    /// `none` or `last`.
    public var catch_up: String
    public var enabled: Bool
    /// Null when disabled or when the expression never fires again.
    public var next_run_at: String?
    /// The last slot that fired (queued or skipped).
    public var last_run_at: String?
    /// The last slot skipped (`overlap: skip` while a run was pending or running, or refused).
    public var last_skipped_at: String?
    public var last_skip_reason: String?

    public init(cron: String, timezone: String, overlap: String, catch_up: String, enabled: Bool, next_run_at: String?,
                last_run_at: String?, last_skipped_at: String?, last_skip_reason: String?) {
        self.cron = cron
        self.timezone = timezone
        self.overlap = overlap
        self.catch_up = catch_up
        self.enabled = enabled
        self.next_run_at = next_run_at
        self.last_run_at = last_run_at
        self.last_skipped_at = last_skipped_at
        self.last_skip_reason = last_skip_reason
    }
}

/// The `schedule` member of a job's body (`ScheduleBody`): `cron` is required when the job has
/// no schedule yet; on a PATCH the members given replace the current ones. `null` for the whole
/// member removes the schedule.
public struct WireJobScheduleBody: Codable, Sendable, Equatable {
    public var cron: String?
    public var timezone: String?
    public var overlap: String?
    public var catch_up: String?
    public var enabled: Bool?

    public init(cron: String? = nil, timezone: String? = nil, overlap: String? = nil, catch_up: String? = nil, enabled: Bool? = nil) {
        self.cron = cron
        self.timezone = timezone
        self.overlap = overlap
        self.catch_up = catch_up
        self.enabled = enabled
    }
}

/// One scheduled job of `GET /schedules` (`ScheduledJob`).
public struct WireScheduledJob: Codable, Sendable, Equatable {
    public var job_id: Int64
    public var job_name: String
    public var tenant: String?
    public var schedule: WireJobSchedule

    public init(job_id: Int64, job_name: String, tenant: String?, schedule: WireJobSchedule) {
        self.job_id = job_id
        self.job_name = job_name
        self.tenant = tenant
        self.schedule = schedule
    }
}

/// `GET /schedules` (`ScheduleList`): the scheduled jobs the caller sees, enabled ones by next
/// run first, then the disabled ones.
public struct WireScheduleList: Codable, Sendable, Equatable {
    public var schedules: [WireScheduledJob]

    public init(schedules: [WireScheduledJob]) { self.schedules = schedules }
}

extension WireScheduleList: WireAnswer {
    public static let absentWhenNil: Set<String> = []
}
