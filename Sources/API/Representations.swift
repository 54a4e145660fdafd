import Domain
import Foundation
import HumanText

/// How jobs, executions and the rest look on the wire: every key of the contract present (null
/// when empty), snake_case, dates as RFC 3339 UTC with milliseconds and a numeric offset
/// (`2026-11-27T03:04:05.123+00:00`, which Python's `datetime.fromisoformat` reads on every
/// version and JavaScript's `Date` too).
enum Representations {
    // MARK: Dates

    static func date(_ date: Date) -> JSON { .string(format(date)) }
    static func date(_ date: Date?) -> JSON { date.map { .string(format($0)) } ?? .null }

    static func format(_ date: Date) -> String { Timestamp.rfc3339(date) }

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
    static func job(_ job: Job, secretsCleared: [String] = []) -> JSON {
        var members: [(String, JSON)] = [
            ("id", .int(job.id)),
            ("name", .string(job.name)),
            ("script_type", .string(job.scriptType.rawValue)),
            ("script_content", .string(job.scriptContent)),
            ("policy", .string(job.policy)),
            ("limits", limits(job.limits)),
            ("concurrency", .string(job.concurrency.rawValue)),
            ("arguments", .array(job.arguments.map(JSON.string))),
            ("environment", stringMap(job.environment)),
            ("secret_environment", .array(job.secretEnvironment.keys.sorted().map(JSON.string))),
            ("tenant", JSON.optional(job.tenant, JSON.string)),
            ("created_by", JSON.optional(job.createdBy) { .int($0) }),
            ("files", .array(job.files.map { .object([("path", .string($0.path)), ("size", .int($0.size)),
                                                      ("executable", .bool($0.executable))]) })),
            ("outputs", .array(job.outputs.map(JSON.string))),
            ("created_at", date(job.createdAt)),
            ("updated_at", date(job.updatedAt)),
        ]
        if !secretsCleared.isEmpty { members.append(("secret_environment_cleared", .array(secretsCleared.map(JSON.string)))) }
        return .object(members)
    }

    /// `["memory=64MiB"]` as `{"memory": "64MiB"}`.
    static func limits(_ texts: [String]) -> JSON {
        .object(texts.compactMap { text in
            guard let eq = text.firstIndex(of: "=") else { return nil }
            return (String(text[..<eq]), .string(String(text[text.index(after: eq)...])))
        })
    }

    static func stringMap(_ map: [String: String]) -> JSON {
        .object(map.keys.sorted().map { ($0, .string(map[$0]!)) })
    }

    // MARK: Executions

    /// How output is written: UTF-8 text (invalid bytes replaced, with a flag) or base64.
    enum OutputEncoding: String, Sendable, CaseIterable {
        case utf8 = "utf-8"
        case base64
    }

    /// An execution; `withOutput: false` leaves stdout and stderr out (listings).
    static func execution(_ e: Execution, encoding: OutputEncoding = .utf8, withOutput: Bool = true,
                          executionID: Bool = false) -> JSON {
        var members: [(String, JSON)] = []
        if executionID { members.append(("execution_id", .int(e.id))) }
        members += [
            ("id", .int(e.id)),
            ("job_id", JSON.optional(e.jobID) { .int($0) }),
            ("status", .string(e.status.rawValue)),
        ]
        var outputExtras: [(String, JSON)] = []
        if withOutput {
            let (stdout, stdoutInvalid) = output(e.stdout, encoding)
            let (stderr, stderrInvalid) = output(e.stderr, encoding)
            members += [("stdout", .string(stdout)), ("stderr", .string(stderr))]
            outputExtras = [
                ("stdout_encoding", .string(encoding.rawValue)),
                ("stderr_encoding", .string(encoding.rawValue)),
                ("stdout_invalid_utf8", .bool(stdoutInvalid)),
                ("stderr_invalid_utf8", .bool(stderrInvalid)),
            ]
        }
        members += [
            ("exit_code", JSON.optional(e.exitCode) { .int($0) }),
            ("created_at", date(e.createdAt)),
            ("finished_at", date(e.finishedAt)),
            ("started_at", date(e.startedAt)),
            ("verdict", JSON.optional(e.verdict) { .string($0.rawValue) }),
            ("signal", JSON.optional(e.signal) { .int($0) }),
            ("signal_name", JSON.optional(e.signal.flatMap(signalName)) { .string($0) }),
            ("reason", JSON.optional(e.reason) { .string($0) }),
            ("script_type", .string(e.scriptType.rawValue)),
            ("policy", .string(e.policyName)),
            ("arguments", .array(e.arguments.map(JSON.string))),
            ("priority", .int(e.priority)),
            ("tenant", JSON.optional(e.tenant, JSON.string)),
            ("submitted_by", JSON.optional(e.submittedBy) { .int($0) }),
        ]
        members += outputExtras
        members += [
            ("stdout_bytes", .int(e.stdoutBytes)),
            ("stderr_bytes", .int(e.stderrBytes)),
            ("stdout_truncated", .bool(e.stdoutTruncated)),
            ("stderr_truncated", .bool(e.stderrTruncated)),
            ("usage", .object([
                ("wall_ms", .int(e.usage.wallMs)),
                ("cpu_ms", .int(e.usage.cpuMs)),
                ("memory_peak_bytes", JSON.optional(e.usage.memoryPeakBytes) { .int($0) }),
            ])),
            ("worker", JSON.optional(e.worker) { .string($0) }),
            ("cancel_requested", .bool(e.cancelRequested)),
            ("weaker_isolation", .array(e.weakerIsolation.map(JSON.string))),
        ]
        return .object(members)
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
    /// The text of `bytes` when they are valid UTF-8, nil otherwise.
    init?(validatingUTF8Bytes bytes: Data) {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var text = ""
        text.reserveCapacity(bytes.count)
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): text.unicodeScalars.append(scalar)
            case .emptyInput: self = text; return
            case .error: return nil
            }
        }
    }
}
