import Domain
import Foundation
import Wire

extension RunExitCode {
    /// The exit status of `confine exec run --wait` for a finished execution: the same as
    /// `confine run`'s for the same verdict; `interrupted` (the server stopped during the run)
    /// counts as a setup failure.
    static func code(for execution: WireExecution) -> Int32 {
        guard let verdict = execution.verdict.flatMap(ExecutionVerdict.init(rawValue:)) else {
            switch execution.status {
            case "SUCCESS": return 0
            case "CANCELLED": return cancelled.rawValue
            case "TIMED_OUT": return wallTimeout.rawValue
            default: return execution.exit_code ?? 1
            }
        }
        switch verdict {
        case .exited: return execution.exit_code ?? 0
        case .signaled: return 128 + (execution.signal ?? 0)
        case .wallTimeout: return wallTimeout.rawValue
        case .cpuTimeout: return cpuTimeout.rawValue
        case .memoryLimit: return memoryLimit.rawValue
        case .outputLimit: return outputLimit.rawValue
        case .cancelled: return cancelled.rawValue
        case .setupFailed, .interrupted: return setupFailed.rawValue
        }
    }
}
