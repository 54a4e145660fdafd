import Foundation
import Sandbox
import Wire

/// The one line `confine run` ends with, for an execution of the server: how it ended, then
/// its usage — `exited 0 — wall 12 ms, cpu 3 ms, peak memory 1.2 MiB`. Written by
/// `RunResult.summary` itself, so that a local run and a served one read alike.
enum ExecutionSummary {
    static func line(_ e: WireExecution) -> String {
        let verdict = e.verdict.flatMap(RunVerdict.init(rawValue:))
        let result = RunResult(verdict: verdict ?? .exited, exitCode: e.exit_code, signal: e.signal,
                               wallMs: e.usage?.wall_ms ?? 0, cpuMs: e.usage?.cpu_ms ?? 0,
                               memoryPeakBytes: e.usage?.memory_peak_bytes.map { UInt64(max(0, $0)) },
                               stdoutBytes: UInt64(max(0, e.stdout_bytes ?? 0)), stderrBytes: UInt64(max(0, e.stderr_bytes ?? 0)),
                               stdoutTruncated: e.stdout_truncated == true, stderrTruncated: e.stderr_truncated == true)
        let line = result.summary
        guard let usage = line.range(of: " — ") else { return line }
        // The head in the server's words where the sandbox's would lose them: a setup failure's
        // reason is only text here, and `cancelled`/`interrupted` are the engine's verdicts.
        switch e.verdict {
        case "setup_failed"?: return "setup failed: \(e.reason ?? "unknown")" + line[usage.lowerBound...]
        case let other? where verdict == nil: return other + line[usage.lowerBound...]
        case nil: return e.status + line[usage.lowerBound...]
        default: return line
        }
    }

    /// Why it ended as it did, when the line does not say it.
    static func reason(_ e: WireExecution) -> String? {
        guard let reason = e.reason, e.verdict != "setup_failed", e.verdict != "exited" else { return nil }
        return "execution \(e.id) \(e.status): \(reason)"
    }
}
