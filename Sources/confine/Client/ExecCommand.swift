import ArgumentParser
import Foundation
import Wire

/// `confine exec …`: run jobs on a Confine server and follow their executions.
struct ExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run jobs on a Confine server; list, show and cancel executions; print their output.",
        discussion: """
            Exit status: 0 done; 1 the server refused (the reason is printed); 64 bad usage; \
            66 an input file cannot be read; 69 the server cannot be reached or failed; 78 the config file \
            cannot be used. \
            `exec run --wait` exits like the execution (see `confine exec run --help`).
            """,
        subcommands: [Run.self, List.self, Show.self, Cancel.self, Output.self, Files.self]
    )

    /// The longest wait asked of the server in one run request, in seconds.
    static let serverWait = 1.0

    /// The exit status of `exec run --timeout` when the execution outlasts it (EX_TEMPFAIL).
    static let stillRunningExitCode: Int32 = 75

    /// The EXIT column: the exit code, else the signal's name, else `-`.
    static func exitColumn(_ e: WireExecution) -> String {
        if let code = e.exit_code { return String(code) }
        if let name = e.signal_name { return name }
        if let signal = e.signal { return "signal \(signal)" }
        return "-"
    }

    /// The lines on stderr after `exec run --wait`/`--follow` and `exec output -f`: the summary
    /// `confine run` prints (how it ended, wall, cpu, peak memory, truncation), then the reason
    /// when the end was not the script's own exit.
    static func notes(_ e: WireExecution) -> [String] {
        [ExecutionSummary.line(e)] + (ExecutionSummary.reason(e).map { [$0] } ?? [])
    }

    /// An execution as `key: value` lines, then its stdout and stderr.
    static func describe(_ e: WireExecution) -> String {
        var fields = Fields()
        fields.add("id", String(e.id))
        fields.add("job_id", e.job_id.map(String.init) ?? "- (ad-hoc)")
        fields.add("status", e.status)
        fields.add("verdict", e.verdict ?? "-")
        fields.add("exit_code", e.exit_code.map(String.init) ?? "-")
        if let signal = e.signal { fields.add("signal", "\(signal)" + (e.signal_name.map { " (\($0))" } ?? "")) }
        if let reason = e.reason { fields.add("reason", reason) }
        if let type = e.script_type { fields.add("script_type", type) }
        if let policy = e.policy { fields.add("policy", policy) }
        if let arguments = e.arguments { fields.add("arguments", Display.arguments(arguments)) }
        if let priority = e.priority { fields.add("priority", String(priority)) }
        fields.add("created_at", e.created_at)
        fields.add("started_at", e.started_at ?? "-")
        fields.add("finished_at", e.finished_at ?? "-")
        if let usage = e.usage {
            fields.add("wall", Display.duration(ms: usage.wall_ms))
            fields.add("cpu", Display.duration(ms: usage.cpu_ms))
            fields.add("memory_peak", Display.bytes(usage.memory_peak_bytes))
        }
        if let denied = e.denied, !denied.isEmpty {
            fields.add("refused", denied.map { "\($0.syscall) ×\($0.count)" + ($0.action == "kill" ? " (killed the run)" : "") }.joined(separator: ", "))
        }
        if let worker = e.worker { fields.add("worker", worker) }
        if e.cancel_requested == true { fields.add("cancel_requested", "true") }
        if let weaker = e.weaker_isolation, !weaker.isEmpty {
            fields.add("weaker_isolation", "without " + weaker.joined(separator: ", ") + " (allow_weaker)")
        }
        var text = fields.render()
        for (name, content, encoding, invalid, bytes, truncated) in [
            ("stdout", e.stdout, e.stdout_encoding, e.stdout_invalid_utf8, e.stdout_bytes, e.stdout_truncated),
            ("stderr", e.stderr, e.stderr_encoding, e.stderr_invalid_utf8, e.stderr_bytes, e.stderr_truncated),
        ] {
            var header = "--- \(name)"
            if let bytes { header += " (\(bytes) bytes" + (truncated == true ? ", truncated" : "") + ")" }
            text += header + " ---\n"
            guard let content else { continue }
            if encoding == "base64" {
                text += "(not UTF-8 text: see `confine exec output \(e.id) --stream \(name)`)\n"
                continue
            }
            text += content
            if !content.isEmpty && !content.hasSuffix("\n") { text += "\n" }
            if invalid == true { text += "(bytes that are not UTF-8 shown as \u{FFFD}: see `confine exec output \(e.id) --stream \(name)`)\n" }
        }
        return text
    }
}
