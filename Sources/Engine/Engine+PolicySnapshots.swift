import Domain
import Foundation
import Sandbox

// The policy an execution was submitted with, parsed back from its snapshot (cached: many
// executions share one), and the output caps it gives.

extension Engine {
    /// The capture caps of an execution's policy snapshot (the defaults' when it cannot be read).
    func outputCaps(of execution: Execution) -> OutputPosition {
        let limits = (try? policy(of: execution))?.limits ?? Limits()
        return OutputPosition(stdout: Int64(clamping: limits.stdoutBytes), stderr: Int64(clamping: limits.stderrBytes))
    }

    /// The policy of an execution's snapshot, parsed once for all executions that share it.
    func policy(of execution: Execution) throws -> Policy {
        if let cached = snapshots.withLock({ $0[execution.policySnapshot] }) { return cached }
        let policy = try PolicyLoader.load(yaml: execution.policySnapshot, name: execution.policyName,
                                           file: "policy snapshot of execution \(execution.id)")
        snapshots.withLock { cache in
            if cache.count >= 64 { cache.removeAll() }
            cache[execution.policySnapshot] = policy
        }
        return policy
    }
}
