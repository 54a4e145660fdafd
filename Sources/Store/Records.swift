import Domain
import Foundation
import GRDB

/// Rows of the schema (see `Migrations`) as Domain values: JSON text back to lists and maps,
/// integer milliseconds back to dates, BLOBs back to `Data`.
///
/// Rows are read by column position, from statements that list their columns in the order of
/// `JobColumn` / `ExecutionColumn` (`Records.jobSelect`, `Records.executionSelect`): looking a
/// column up by name lowercases the name on every access, which was a fifth of the time of a
/// 100-row listing.
enum Records {
    /// The columns of `job`, in the order `job(_:)` reads them.
    enum JobColumn: Int, CaseIterable {
        case id, name, scriptType, scriptContent, policy, limits, concurrency, arguments, environment, createdAt, updatedAt,
             secretEnvironment, tenant, createdBy, filesIndex, outputs, scheduleCron, scheduleTimezone, scheduleOverlap,
             scheduleCatchUp, scheduleEnabled, nextRunAt, lastSlotAt, lastSkippedAt, lastSkipReason, retry, callback

        var name: String {
            ["id", "name", "script_type", "script_content", "policy", "limits", "concurrency", "arguments", "environment",
             "created_at", "updated_at", "secret_environment", "tenant", "created_by", "files_index", "outputs",
             "schedule_cron", "schedule_timezone", "schedule_overlap", "schedule_catch_up", "schedule_enabled", "next_run_at",
             "last_slot_at", "last_skipped_at", "last_skip_reason", "retry", "callback"][rawValue]
        }
    }

    /// The columns of `execution`, in the order `execution(_:)` reads them. The output is not
    /// among them: it lives in `execution_output` (`OutputPieces`).
    enum ExecutionColumn: Int, CaseIterable {
        case id, jobID, status, verdict, exitCode, signal, reason, scriptType, scriptSnapshot, policyName, policySnapshot,
             arguments, environment, stdin, priority, stdoutBytes, stderrBytes, stdoutTruncated,
             stderrTruncated, wallMs, cpuMs, memoryPeakBytes, createdAt, startedAt, finishedAt, worker, leaseDeadline,
             cancelRequested, takeovers, secretEnvironment, tenant, submittedBy, weakerIsolation, outputs, denied, trigger,
             scheduledFor, attempt, retryOf, notBefore, callback

        var name: String {
            ["id", "job_id", "status", "verdict", "exit_code", "signal", "reason", "script_type", "script_snapshot",
             "policy_name", "policy_snapshot", "arguments", "environment", "stdin", "priority", "stdout_bytes",
             "stderr_bytes", "stdout_truncated", "stderr_truncated", "wall_ms", "cpu_ms",
             "memory_peak_bytes", "created_at", "started_at", "finished_at", "worker", "lease_deadline",
             "cancel_requested", "takeovers", "secret_environment", "tenant", "submitted_by", "weaker_isolation",
             "outputs", "denied", "run_trigger", "scheduled_for", "attempt", "retry_of", "not_before", "callback"][rawValue]
        }
    }

    /// `SELECT <job columns> FROM job`, to which a WHERE clause may follow.
    static let jobSelect = "SELECT " + JobColumn.allCases.map(\.name).joined(separator: ", ") + " FROM job"
    /// `SELECT <execution columns> FROM execution`, to which a WHERE clause may follow.
    /// Every execution column, in `ExecutionColumn`'s order (what `execution(_:)` decodes).
    static let executionColumns = ExecutionColumn.allCases.map(\.name).joined(separator: ", ")
    static let executionSelect = "SELECT " + executionColumns + " FROM execution"

    /// What an answer to a client reads: `executionSelect` with the columns a client is never
    /// answered left out — the script and policy snapshots (empty), the environment, stdin and
    /// sealed secrets (none) — read as constants in their places, so `execution(_:)` reads both.
    /// They are most of a row's bytes (a policy snapshot is a few KB of YAML): copying and
    /// decoding them was most of the time of a 100-row listing.
    static let executionSummarySelect = "SELECT " + executionSummaryColumns + " FROM execution"

    /// The column list of `executionSummarySelect`.
    static let executionSummaryColumns = ExecutionColumn.allCases.map { column in
        switch column {
        case .scriptSnapshot, .policySnapshot: return "'' AS \(column.name)"
        case .environment, .stdin, .secretEnvironment: return "NULL AS \(column.name)"
        default: return column.name
        }
    }.joined(separator: ", ")

    static func job<R: ColumnReading>(_ row: R) -> Job {
        // Typed as StatementColumnConvertible, each column is read straight from SQLite's row;
        // the generic DatabaseValue path instantiated type metadata for every column of every
        // row (a fifth of a 100-row listing's time).
        func at<T: DatabaseValueConvertible & StatementColumnConvertible>(_ c: JobColumn) -> T { row.decoded(c.rawValue) }
        var job = Job(id: at(.id), name: at(.name), scriptType: ScriptType(at(.scriptType) as String),
                   scriptContent: at(.scriptContent), policy: at(.policy),
                   limits: JSONText.decode([String].self, at(.limits), empty: []),
                   concurrency: ConcurrencyRule(rawValue: at(.concurrency)) ?? .forbid,
                   arguments: JSONText.decode([String].self, at(.arguments), empty: []),
                   environment: JSONText.decode([String: String].self, at(.environment), empty: [:]),
                   secretEnvironment: JSONText.decode([String: String].self, at(.secretEnvironment), empty: [:]),
                   tenant: tenant(at(.tenant)), createdBy: at(.createdBy) as Int64?,
                   files: JSONText.decode([InputFileEntry].self, at(.filesIndex), empty: []),
                   createdAt: Millis.date(at(.createdAt)), updatedAt: Millis.date(at(.updatedAt)))
        job.outputs = JSONText.decode([String].self, at(.outputs), empty: [])
        job.schedule = schedule(row)
        let retry: String? = row.decodedIfPresent(JobColumn.retry.rawValue)
        job.retry = JSONText.decode(RetryPolicy?.self, retry, empty: nil)
        let callback: String? = row.decodedIfPresent(JobColumn.callback.rawValue)
        job.callback = JSONText.decode(WebhookCallback?.self, callback, empty: nil)
        return job
    }

    /// The execution of a row, its `stdout` and `stderr` empty (`OutputPieces` reads them).
    static func execution<R: ColumnReading>(_ row: R) -> Execution {
        func at<T: DatabaseValueConvertible & StatementColumnConvertible>(_ c: ExecutionColumn) -> T { row.decoded(c.rawValue) }
        func optional<T: DatabaseValueConvertible & StatementColumnConvertible>(_ c: ExecutionColumn) -> T? {
            row.decodedIfPresent(c.rawValue)
        }
        let verdict: String? = optional(.verdict)
        let started: Int64? = optional(.startedAt)
        let finished: Int64? = optional(.finishedAt)
        let lease: Int64? = optional(.leaseDeadline)
        var execution = Execution(
            id: at(.id), jobID: optional(.jobID),
            status: ExecutionStatus(rawValue: at(.status)) ?? .failed,
            verdict: verdict.flatMap(ExecutionVerdict.init(rawValue:)),
            exitCode: optional(.exitCode), signal: optional(.signal), reason: optional(.reason),
            scriptType: ScriptType(at(.scriptType) as String), scriptSnapshot: at(.scriptSnapshot),
            policyName: at(.policyName), policySnapshot: at(.policySnapshot),
            arguments: JSONText.decode([String].self, optional(.arguments), empty: []),
            environment: JSONText.decode([String: String].self, optional(.environment), empty: [:]),
            stdin: optional(.stdin), priority: at(.priority),
            stdoutBytes: at(.stdoutBytes), stderrBytes: at(.stderrBytes),
            stdoutTruncated: at(.stdoutTruncated), stderrTruncated: at(.stderrTruncated),
            usage: ResourceUsage(wallMs: at(.wallMs), cpuMs: at(.cpuMs), memoryPeakBytes: optional(.memoryPeakBytes)),
            createdAt: Millis.date(at(.createdAt)), startedAt: started.map(Millis.date),
            finishedAt: finished.map(Millis.date), worker: optional(.worker), leaseDeadline: lease.map(Millis.date),
            cancelRequested: at(.cancelRequested), takeovers: at(.takeovers),
            secretEnvironment: JSONText.decode([String: String].self, optional(.secretEnvironment), empty: [:]),
            tenant: tenant(at(.tenant)), submittedBy: optional(.submittedBy),
            weakerIsolation: JSONText.decode([String].self, optional(.weakerIsolation), empty: []))
        execution.outputs = JSONText.decode([String].self, optional(.outputs), empty: [])
        let denied: String? = optional(.denied)
        execution.denied = denied.map { JSONText.decode([DeniedSyscall].self, $0, empty: []) }
        execution.trigger = ExecutionTrigger(rawValue: at(.trigger)) ?? .api
        let slot: Int64? = optional(.scheduledFor)
        execution.scheduledFor = slot.map(Millis.date)
        execution.attempt = at(.attempt)
        execution.retryOf = optional(.retryOf)
        let notBefore: Int64? = optional(.notBefore)
        execution.notBefore = notBefore.map(Millis.date)
        let callback: String? = optional(.callback)
        execution.callback = JSONText.decode(WebhookCallback?.self, callback, empty: nil)
        return execution
    }

    /// A job row's schedule (nil when `schedule_cron` is NULL).
    static func schedule<R: ColumnReading>(_ row: R) -> JobSchedule? {
        func optional<T: DatabaseValueConvertible & StatementColumnConvertible>(_ c: JobColumn) -> T? { row.decodedIfPresent(c.rawValue) }
        guard let cron: String = optional(.scheduleCron) else { return nil }
        let next: Int64? = optional(.nextRunAt), last: Int64? = optional(.lastSlotAt), skipped: Int64? = optional(.lastSkippedAt)
        let overlap: String? = optional(.scheduleOverlap), catchUp: String? = optional(.scheduleCatchUp)
        return JobSchedule(cron: cron, timezone: optional(.scheduleTimezone) ?? "UTC",
                           overlap: overlap.flatMap(ScheduleOverlap.init(rawValue:)) ?? .skip,
                           catchUp: catchUp.flatMap(ScheduleCatchUp.init(rawValue:)) ?? .none,
                           enabled: (optional(.scheduleEnabled) as Bool?) ?? false, nextRunAt: next.map(Millis.date),
                           lastSlotAt: last.map(Millis.date), lastSkippedAt: skipped.map(Millis.date),
                           lastSkipReason: optional(.lastSkipReason))
    }

    /// The stored tenant ('' for none) as the model's (nil for none).
    static func tenant(_ stored: String) -> String? { stored.isEmpty ? nil : stored }

    /// The columns of `access_token`, in the order `token(_:)` reads them (the digest last).
    static let tokenSelect = """
        SELECT id, name, role, tenant, policies, max_policy, max_active, created_at, expires_at, last_used_at, revoked_at,
               created_by, digest, max_priority FROM access_token
        """

    static func token(_ row: Row) -> AccessToken {
        let policies: String? = row[4]
        let expires: Int64? = row[8], used: Int64? = row[9], revoked: Int64? = row[10]
        return AccessToken(id: row[0], name: row[1], role: Role(rawValue: row[2]) ?? .viewer, tenant: row[3],
                           policies: policies.map { JSONText.decode([String].self, $0, empty: []) }, maxPolicy: row[5],
                           maxActive: row[6], createdAt: Millis.date(row[7]), expiresAt: expires.map(Millis.date),
                           lastUsedAt: used.map(Millis.date), revokedAt: revoked.map(Millis.date), createdBy: row[11],
                           maxPriority: row[13])
    }

    static let auditSelect = """
        SELECT id, at, token_id, token_name, role, action, target_type, target_id, address, detail FROM audit
        """

    static func audit(_ row: Row) -> AuditEntry {
        let role: String? = row[4]
        return AuditEntry(id: row[0], at: Millis.date(row[1]), tokenID: row[2], tokenName: row[3],
                          role: role.flatMap(Role.init(rawValue:)), action: row[5], targetType: row[6], targetID: row[7],
                          address: row[8], detail: row[9])
    }
}

/// A WHERE clause built from optional filters: each given value adds `column = ?` (or any
/// clause with one placeholder) and its argument.
struct Conditions {
    private(set) var clauses: [String] = []
    private(set) var arguments: StatementArguments = []

    /// Adds `clause` with `value` when the value is given.
    mutating func add(_ clause: String, _ value: (any DatabaseValueConvertible)?) {
        guard let value else { return }
        clauses.append(clause)
        arguments += [value]
    }

    /// Adds a clause with its own arguments (`status IN (?, ?)`).
    mutating func add(_ clause: String, arguments more: StatementArguments) {
        clauses.append(clause)
        arguments += more
    }

    /// ` WHERE a AND b`, or "" without conditions.
    var sql: String { clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ") }
}
