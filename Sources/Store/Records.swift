import Domain
import Foundation
import GRDB

/// Rows of the schema (see `Migrations`) as Domain values: JSON text back to lists and maps,
/// integer milliseconds back to dates, BLOBs back to `Data`.
enum Records {
    static func job(_ row: Row) -> Job {
        Job(id: row["id"], name: row["name"], scriptType: ScriptType(row["script_type"] as String),
            scriptContent: row["script_content"], policy: row["policy"],
            limits: JSON.decode([String].self, row["limits"], default: []),
            concurrency: ConcurrencyRule(rawValue: row["concurrency"]) ?? .forbid,
            arguments: JSON.decode([String].self, row["arguments"], default: []),
            environment: JSON.decode([String: String].self, row["environment"], default: [:]),
            createdAt: Millis.date(row["created_at"]), updatedAt: Millis.date(row["updated_at"]))
    }

    static func execution(_ row: Row) -> Execution {
        let verdict: String? = row["verdict"]
        let started: Int64? = row["started_at"]
        let finished: Int64? = row["finished_at"]
        let lease: Int64? = row["lease_deadline"]
        let stdout: Data? = row["stdout"]
        let stderr: Data? = row["stderr"]
        return Execution(
            id: row["id"], jobID: row["job_id"],
            status: ExecutionStatus(rawValue: row["status"]) ?? .failed,
            verdict: verdict.flatMap(ExecutionVerdict.init(rawValue:)),
            exitCode: row["exit_code"], signal: row["signal"], reason: row["reason"],
            scriptType: ScriptType(row["script_type"] as String), scriptSnapshot: row["script_snapshot"],
            policyName: row["policy_name"], policySnapshot: row["policy_snapshot"],
            arguments: JSON.decode([String].self, row["arguments"], default: []),
            environment: JSON.decode([String: String].self, row["environment"], default: [:]),
            stdin: row["stdin"], priority: row["priority"],
            stdout: stdout ?? Data(), stderr: stderr ?? Data(),
            stdoutBytes: row["stdout_bytes"], stderrBytes: row["stderr_bytes"],
            stdoutTruncated: row["stdout_truncated"], stderrTruncated: row["stderr_truncated"],
            usage: ResourceUsage(wallMs: row["wall_ms"], cpuMs: row["cpu_ms"], memoryPeakBytes: row["memory_peak_bytes"]),
            createdAt: Millis.date(row["created_at"]), startedAt: started.map(Millis.date),
            finishedAt: finished.map(Millis.date), worker: row["worker"], leaseDeadline: lease.map(Millis.date),
            cancelRequested: row["cancel_requested"], takeovers: row["takeovers"])
    }
}
