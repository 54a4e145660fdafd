import Glibc
import HumanText
/// How a run ended, precisely: the first of these that applies wins, in this order:
/// `setup_failed`, `cancelled`, `wall_timeout`, `cpu_timeout`, `memory_limit`, `output_limit`,
/// then `signaled` or `exited`.
public enum RunVerdict: String, Sendable, Codable, CaseIterable {
    /// The program exited by itself; see `exitCode`.
    case exited
    /// The program died of a signal it was not sent by a limit; see `signal`.
    case signaled
    /// The wall-clock deadline passed and the run was killed.
    case wallTimeout = "wall_timeout"
    /// The CPU-time limit was reached (RLIMIT_CPU or the cgroup's total).
    case cpuTimeout = "cpu_timeout"
    /// The cgroup's memory limit was hit and the kernel killed a process of the run.
    case memoryLimit = "memory_limit"
    /// A stream passed its cap under a policy that kills on overflow.
    case outputLimit = "output_limit"
    /// The sandbox could not be built; see `setupFailure`.
    case setupFailed = "setup_failed"
    /// The run was cancelled by its caller.
    case cancelled
}

/// Where and why building a sandbox failed: "mount /usr: ENOENT (No such file or directory)".
public struct SetupFailure: Sendable, Equatable, CustomStringConvertible {
    /// The stage, in words: `mount`, `execve`, `cgroup`, `uid_map`, ...
    public var stage: String
    /// What the stage was working on (a path, a limit), if any.
    public var subject: String?
    /// The errno, 0 when none applies.
    public var errno: Int32

    public init(stage: String, subject: String? = nil, errno: Int32) {
        self.stage = stage
        self.subject = subject
        self.errno = errno
    }

    public var description: String {
        let what = subject.map { "\(stage) \($0)" } ?? stage
        return errno == 0 ? what : "\(what): \(ErrnoName.describe(errno))"
    }
}

/// Everything known about one finished run.
public struct RunResult: Sendable, Equatable {
    public var verdict: RunVerdict
    /// Exit code when the program exited (any verdict), nil when it was signaled or never ran.
    public var exitCode: Int32?
    /// The signal that ended the program, if any.
    public var signal: Int32?
    public var wallMs: Int64
    /// CPU time of the whole process tree (user + system).
    public var cpuMs: Int64
    /// Peak memory of the run's cgroup, nil when unknown.
    public var memoryPeakBytes: UInt64?
    /// Captured output (up to each stream's cap).
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    /// Bytes the program wrote to each stream, captured or not.
    public var stdoutBytes: UInt64
    public var stderrBytes: UInt64
    public var stdoutTruncated: Bool
    public var stderrTruncated: Bool
    /// Set when `verdict == .setupFailed`.
    public var setupFailure: SetupFailure?
    /// Processes the kernel's OOM killer ended in this run.
    public var oomKills: Int
    /// How long the launch took, in microseconds: from the start of the run until the program
    /// was handed to its sandbox (a sandbox built, or a warm one taken and given its limits,
    /// then the run sent to it). 0 when the sandbox could not be set up (`setup_failed`).
    public var launchMicros: Int64
    /// The working directory's files that matched the request's `outputs`, collected after the
    /// program ended (`WorkdirCapture`), and those that matched but were not taken, with why.
    public var artifacts: [CollectedFile] = []
    public var skippedArtifacts: [SkippedFile] = []
    /// The calls the policy's filter refused, in the order first refused; nil when refusals
    /// could not be reported (no filter, or a policy that refuses what handing up the listener
    /// takes: `SeccompProgram.canReportRefusals`). In a trial run (`RunRequest.learning`): the
    /// calls it would have refused, all let through.
    public var denied: [DeniedCall]?
    /// A trial run's (`RunRequest.learning`) network and filesystem needs: connections tried
    /// and paths opened that its view lacks but the host has — to review, never granted.
    public var trialNotes: [TrialNote] = []

    public init(verdict: RunVerdict, exitCode: Int32? = nil, signal: Int32? = nil, wallMs: Int64 = 0,
                cpuMs: Int64 = 0, memoryPeakBytes: UInt64? = nil, stdout: [UInt8] = [], stderr: [UInt8] = [],
                stdoutBytes: UInt64 = 0, stderrBytes: UInt64 = 0, stdoutTruncated: Bool = false,
                stderrTruncated: Bool = false, setupFailure: SetupFailure? = nil, oomKills: Int = 0,
                launchMicros: Int64 = 0) {
        self.verdict = verdict
        self.exitCode = exitCode
        self.signal = signal
        self.wallMs = wallMs
        self.cpuMs = cpuMs
        self.memoryPeakBytes = memoryPeakBytes
        self.stdout = stdout
        self.stderr = stderr
        self.stdoutBytes = stdoutBytes
        self.stderrBytes = stderrBytes
        self.stdoutTruncated = stdoutTruncated
        self.stderrTruncated = stderrTruncated
        self.setupFailure = setupFailure
        self.oomKills = oomKills
        self.launchMicros = launchMicros
    }

    /// A measured size, rounded for reading: "11.2 MiB", "768 KiB".
    static func approximate(_ bytes: UInt64) -> String {
        if bytes < 1 << 20 { return "\((bytes + 512) >> 10) KiB" }
        let mib = Double(bytes) / Double(1 << 20)
        return mib < 100 ? String(format: "%.1f MiB", mib) : "\(Int(mib.rounded())) MiB"
    }

    /// A one-line summary: "exited 0 in 12 ms (cpu 3 ms, peak 1.2 MiB)".
    public var summary: String {
        var head: String
        switch verdict {
        case .exited: head = "exited \(exitCode ?? 0)"
        case .signaled: head = "killed by \(SignalName.name(signal ?? 0))"
        case .setupFailed: head = "setup failed: \(setupFailure?.description ?? "unknown")"
        default: head = verdict.rawValue
        }
        var parts = ["wall \(wallMs) ms", "cpu \(cpuMs) ms"]
        if let peak = memoryPeakBytes { parts.append("peak memory \(Self.approximate(peak))") }
        if stdoutTruncated { parts.append("stdout truncated (\(stdoutBytes) bytes written)") }
        if stderrTruncated { parts.append("stderr truncated (\(stderrBytes) bytes written)") }
        if verdict == .signaled, signal == SIGSYS, let killer = denied?.first(where: { $0.action == .kill }) {
            head += " (seccomp: \(killer.syscall) refused)"
        }
        return "\(head) — " + parts.joined(separator: ", ")
    }
}

/// A regular file of the working directory collected after a run: its path relative to the
/// working directory, and its bytes.
public struct CollectedFile: Sendable, Equatable {
    public var path: String
    public var contents: [UInt8]

    public init(path: String, contents: [UInt8]) {
        self.path = path
        self.contents = contents
    }
}

/// A file that matched an output pattern but was not collected, and why (too large, not a
/// regular file, a symbolic link, unreadable).
public struct SkippedFile: Sendable, Equatable, Codable {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}
