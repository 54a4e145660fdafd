import Domain
import Foundation
import HumanText
import Wire

/// Jobs, executions and the rest as their wire types (`Wire`), which `WireJSON` writes: every
/// member of the contract present (null when empty, save those the document leaves out),
/// snake_case, dates as RFC 3339 UTC with milliseconds and a numeric offset
/// (`2026-11-27T03:04:05.123+00:00`, which Python's `datetime.fromisoformat` reads on every
/// version and JavaScript's `Date` too). A member is named in Swift once: in its wire type.
enum Representations {
    // MARK: Dates

    static func format(_ date: Date) -> String { Timestamp.rfc3339(date) }
    static func format(_ date: Date?) -> String? { date.map(Timestamp.rfc3339) }

    /// Parses an RFC 3339 date of a query parameter (`2026-11-27T03:04:05Z`, with or without
    /// fractional seconds, any offset).
    static func parseDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    // MARK: Jobs

    /// A job as answered; after a PATCH that changed its script, script type or policy,
    /// `secret_environment_cleared` names the secret variables that were cleared with it.
    static func job(_ job: Job, secretsCleared: [String] = []) -> WireJob {
        var wire = WireJob(id: job.id, name: job.name, script_type: job.scriptType.rawValue, script_content: job.scriptContent,
                policy: job.policy, limits: limits(job.limits), concurrency: job.concurrency.rawValue,
                arguments: job.arguments, environment: job.environment, secret_environment: job.secretEnvironment.keys.sorted(),
                tenant: job.tenant, created_by: job.createdBy,
                files: job.files.map { WireInputFileEntry(path: $0.path, size: $0.size, executable: $0.executable) },
                outputs: job.outputs, schedule: job.schedule.map(schedule), retry: job.retry.map(retry), created_at: format(job.createdAt),
                updated_at: format(job.updatedAt), secret_environment_cleared: secretsCleared.isEmpty ? nil : secretsCleared)
        wire.callback = job.callback.map { WireCallback(url: $0.url, events: $0.events) }
        return wire
    }

    /// A schedule; its dates as every date of the API (RFC 3339, UTC, `+00:00`): the slot's local
    /// time follows from `timezone`.
    static func schedule(_ s: JobSchedule) -> WireJobSchedule {
        WireJobSchedule(cron: s.cron, timezone: s.timezone, overlap: s.overlap.rawValue, catch_up: s.catchUp.rawValue,
                        enabled: s.enabled, next_run_at: s.enabled ? format(s.nextRunAt) : nil, last_run_at: format(s.lastSlotAt),
                        last_skipped_at: format(s.lastSkippedAt), last_skip_reason: s.lastSkipReason)
    }

    /// A retry policy, its durations in human units.
    static func retry(_ r: RetryPolicy) -> WireRetry {
        WireRetry(max_attempts: r.maxAttempts, on: r.on, initial_delay: HumanUnits.formatMilliseconds(r.initialDelayMs),
                  max_delay: HumanUnits.formatMilliseconds(r.maxDelayMs), multiplier: r.multiplier, jitter: r.jitter)
    }

    /// `["memory=64MiB"]` as `{"memory": "64MiB"}`.
    static func limits(_ texts: [String]) -> [String: WireScalar] {
        var limits: [String: WireScalar] = [:]
        for text in texts {
            guard let eq = text.firstIndex(of: "=") else { continue }
            limits[String(text[..<eq])] = WireScalar(String(text[text.index(after: eq)...]))
        }
        return limits
    }

    // MARK: Executions

    /// How output is written: UTF-8 text (invalid bytes replaced, with a flag) or base64.
    enum OutputEncoding: String, Sendable, CaseIterable {
        case utf8 = "utf-8"
        case base64
    }

    /// An execution; `withOutput: false` leaves stdout and stderr and their members out
    /// (`ExecutionSummary`); `executionID` adds `execution_id` (`RunExecution`).
    static func execution(_ e: Execution, encoding: OutputEncoding = .utf8, withOutput: Bool = true,
                          executionID: Bool = false) -> WireExecution {
        var wire = WireExecution(id: e.id, job_id: e.jobID, status: e.status.rawValue, created_at: format(e.createdAt))
        if executionID { wire.execution_id = e.id }
        if withOutput {
            let (stdout, stdoutInvalid) = output(e.stdout, encoding)
            let (stderr, stderrInvalid) = output(e.stderr, encoding)
            wire.stdout = stdout
            wire.stderr = stderr
            wire.stdout_encoding = encoding.rawValue
            wire.stderr_encoding = encoding.rawValue
            wire.stdout_invalid_utf8 = stdoutInvalid
            wire.stderr_invalid_utf8 = stderrInvalid
        }
        wire.exit_code = e.exitCode
        wire.finished_at = format(e.finishedAt)
        wire.started_at = format(e.startedAt)
        wire.verdict = e.verdict?.rawValue
        wire.signal = e.signal
        wire.signal_name = e.signal.flatMap(signalName)
        wire.reason = e.reason
        wire.script_type = e.scriptType.rawValue
        wire.policy = e.policyName
        wire.arguments = e.arguments
        wire.priority = e.priority
        wire.tenant = e.tenant
        wire.submitted_by = e.submittedBy
        wire.stdout_bytes = e.stdoutBytes
        wire.stderr_bytes = e.stderrBytes
        wire.stdout_truncated = e.stdoutTruncated
        wire.stderr_truncated = e.stderrTruncated
        wire.usage = WireUsage(wall_ms: e.usage.wallMs, cpu_ms: e.usage.cpuMs, memory_peak_bytes: e.usage.memoryPeakBytes)
        wire.worker = e.worker
        wire.node = e.worker
        wire.cancel_requested = e.cancelRequested
        wire.weaker_isolation = e.weakerIsolation
        wire.denied = e.denied?.map { WireDeniedCall(syscall: $0.syscall, count: $0.count, action: $0.action, first_at_ms: $0.firstAtMs) }
        wire.trigger = e.trigger.rawValue
        wire.scheduled_for = format(e.scheduledFor)
        wire.attempt = e.attempt
        wire.retry_of = e.retryOf
        wire.not_before = format(e.notBefore)
        return wire
    }

    /// Output bytes as text: UTF-8 (invalid sequences replaced by U+FFFD, and the flag set) or
    /// base64 of the raw bytes.
    static func output(_ bytes: Data, _ encoding: OutputEncoding) -> (String, invalid: Bool) {
        switch encoding {
        case .base64:
            return (bytes.base64EncodedString(), String(validatingUTF8Bytes: bytes) == nil)
        case .utf8:
            if let text = String(validatingUTF8Bytes: bytes) { return (text, false) }
            return (String(decoding: bytes, as: UTF8.self), true)
        }
    }

    static func signalName(_ signal: Int32) -> String? { SignalName.name(signal) }
}

extension String {
    /// The text of `bytes` when they are valid UTF-8, nil otherwise (the standard library's
    /// validation; the text is built once, not a scalar at a time).
    init?(validatingUTF8Bytes bytes: Data) {
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        self = text
    }
}
