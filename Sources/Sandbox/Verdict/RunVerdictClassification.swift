import Glibc

/// Why the supervisor killed a run, when it did.
public enum RunKill: Sendable, Equatable, CaseIterable {
    /// The wall-clock deadline passed.
    case wall
    /// The CPU-time limit was reached (the cgroup's total, watched by the supervisor).
    case cpu
    /// A stream passed its cap under a policy that kills on overflow.
    case output
    /// The caller cancelled the run.
    case cancelled
    /// The policy kills on a refused call (`seccomp.action: kill`) and the program made one:
    /// the sandbox was killed while the call waited (`RunResult.denied` names it). Reported as
    /// the seccomp kill it is: `signaled`, SIGSYS.
    case seccomp
}

/// What was seen of the end of a run, as far as its verdict depends on it: the facts the
/// supervisor gathers (reports from the sandbox, its own kills, the wait status, the cgroup's
/// counters), without the processes.
public struct RunEnding: Sendable, Equatable {
    /// The sandbox reported a setup failure (a stage and an errno) before the program started.
    public var setupReported: Bool
    /// Why the supervisor killed the run, if it did.
    public var kill: RunKill?
    /// The signal that ended the program, if any.
    public var signal: Int32?
    /// The run's CPU time reached its limit.
    public var cpuLimitReached: Bool
    /// Processes the kernel's OOM killer ended in the run's cgroup.
    public var oomKills: Int
    /// The sandbox's init reported the program's exit status.
    public var exitReported: Bool

    public init(setupReported: Bool = false, kill: RunKill? = nil, signal: Int32? = nil, cpuLimitReached: Bool = false,
                oomKills: Int = 0, exitReported: Bool = true) {
        self.setupReported = setupReported
        self.kill = kill
        self.signal = signal
        self.cpuLimitReached = cpuLimitReached
        self.oomKills = oomKills
        self.exitReported = exitReported
    }
}

extension RunVerdict {
    /// The verdict of a run's ending: the first of these that applies wins, in this order —
    /// `setup_failed` (reported), `cancelled`, `wall_timeout`, `cpu_timeout` (the supervisor's
    /// kill, SIGXCPU from RLIMIT_CPU, or a SIGKILL once the CPU limit was reached),
    /// `memory_limit` (an OOM kill in the cgroup), `output_limit`, `signaled`, `setup_failed`
    /// (init ended without any report), and `exited`. A pure function: no process is needed to
    /// test it.
    public static func classify(_ ending: RunEnding) -> RunVerdict {
        if ending.setupReported { return .setupFailed }
        switch ending.kill {
        case .cancelled: return .cancelled
        case .wall: return .wallTimeout
        case .cpu: return .cpuTimeout
        case .seccomp: return .signaled
        case .output, nil: break
        }
        if ending.signal == SIGXCPU || (ending.signal == SIGKILL && ending.cpuLimitReached) { return .cpuTimeout }
        if ending.oomKills > 0 { return .memoryLimit }
        if ending.kill == .output { return .outputLimit }
        if ending.signal != nil { return .signaled }
        if !ending.exitReported { return .setupFailed }
        return .exited
    }
}
