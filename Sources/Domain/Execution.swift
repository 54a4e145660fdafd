import Foundation

/// Where an execution is in its lifecycle:
/// `PENDING → RUNNING → SUCCESS | FAILED | CANCELLED | TIMED_OUT` (and `PENDING → CANCELLED`).
/// A final status never changes.
public enum ExecutionStatus: String, Sendable, Codable, CaseIterable {
    case pending = "PENDING"
    case running = "RUNNING"
    case success = "SUCCESS"
    case failed = "FAILED"
    case cancelled = "CANCELLED"
    case timedOut = "TIMED_OUT"

    public var isFinal: Bool { self != .pending && self != .running }
}

/// The precise cause of an execution's end (the sandbox's verdict, plus `cancelled` and
/// `interrupted` — a crash or shutdown of the server while it ran).
public enum ExecutionVerdict: String, Sendable, Codable, CaseIterable {
    case exited
    case signaled
    case wallTimeout = "wall_timeout"
    case cpuTimeout = "cpu_timeout"
    case memoryLimit = "memory_limit"
    case outputLimit = "output_limit"
    case setupFailed = "setup_failed"
    case cancelled
    case interrupted

    /// The final status this verdict gives (exit code 0 is the only success).
    public func status(exitCode: Int32?) -> ExecutionStatus {
        switch self {
        case .exited: return exitCode == 0 ? .success : .failed
        case .wallTimeout, .cpuTimeout: return .timedOut
        case .cancelled: return .cancelled
        case .signaled, .memoryLimit, .outputLimit, .setupFailed, .interrupted: return .failed
        }
    }
}

/// What a run used.
public struct ResourceUsage: Sendable, Equatable, Codable {
    public var wallMs: Int64
    public var cpuMs: Int64
    public var memoryPeakBytes: Int64?

    public init(wallMs: Int64 = 0, cpuMs: Int64 = 0, memoryPeakBytes: Int64? = nil) {
        self.wallMs = wallMs
        self.cpuMs = cpuMs
        self.memoryPeakBytes = memoryPeakBytes
    }
}

/// One run of a job, with everything kept about it: what ran (snapshots), how it ended,
/// what it used, and its captured output (bytes; served as UTF-8 or base64).
public struct Execution: Sendable, Equatable, Codable, Identifiable {
    public var id: Int64
    /// The job it ran; nil for an ad-hoc run (`POST /executions`: the script came with the request).
    public var jobID: Int64?
    public var status: ExecutionStatus
    public var verdict: ExecutionVerdict?
    public var exitCode: Int32?
    public var signal: Int32?
    /// Words for how it ended when the numbers do not say it (a setup failure, an interruption).
    public var reason: String?
    /// The script and policy as they were when the execution was created.
    public var scriptType: ScriptType
    public var scriptSnapshot: String
    public var policyName: String
    /// The effective policy (YAML) the run used, limits applied.
    public var policySnapshot: String
    public var arguments: [String]
    public var environment: [String: String]
    public var stdin: Data?
    public var priority: Int
    public var stdout: Data
    public var stderr: Data
    public var stdoutBytes: Int64
    public var stderrBytes: Int64
    public var stdoutTruncated: Bool
    public var stderrTruncated: Bool
    public var usage: ResourceUsage
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// The worker that claimed it, and until when its claim holds unless renewed.
    public var worker: String?
    public var leaseDeadline: Date?
    /// Cancellation was asked while it was RUNNING; the engine kills its sandbox.
    public var cancelRequested: Bool
    /// How many times a worker took it over after the lease of the worker running it expired
    /// (that worker presumably died); 0 for an execution claimed only once.
    public var takeovers: Int
    /// The job's secret environment when it was submitted, still sealed.
    public var secretEnvironment: [String: String]
    /// The job's tenant, copied at submission (scopes listings without a join).
    public var tenant: String?
    /// The token that submitted it (quotas count by it).
    public var submittedBy: Int64?
    /// Isolation the server ran (or will run) it without, because the host lacked it and the
    /// operator allowed that (`allow_weaker`): `cgroups`, `seccomp`. Empty: full isolation.
    public var weakerIsolation: [String]
    /// Glob patterns of the files collected from its working directory after it ends (its
    /// job's and its run's).
    public var outputs: [String] = []
    /// The calls its policy refused while it ran; nil when unknown (not finished, run before
    /// refusals were reported, or under a policy whose refusals cannot be reported).
    public var denied: [DeniedSyscall]?

    public init(id: Int64, jobID: Int64?, status: ExecutionStatus = .pending, verdict: ExecutionVerdict? = nil,
                exitCode: Int32? = nil, signal: Int32? = nil, reason: String? = nil, scriptType: ScriptType,
                scriptSnapshot: String, policyName: String, policySnapshot: String, arguments: [String] = [],
                environment: [String: String] = [:], stdin: Data? = nil, priority: Int = 0, stdout: Data = Data(),
                stderr: Data = Data(), stdoutBytes: Int64 = 0, stderrBytes: Int64 = 0, stdoutTruncated: Bool = false,
                stderrTruncated: Bool = false, usage: ResourceUsage = ResourceUsage(), createdAt: Date,
                startedAt: Date? = nil, finishedAt: Date? = nil, worker: String? = nil, leaseDeadline: Date? = nil,
                cancelRequested: Bool = false, takeovers: Int = 0, secretEnvironment: [String: String] = [:],
                tenant: String? = nil, submittedBy: Int64? = nil, weakerIsolation: [String] = []) {
        self.id = id
        self.jobID = jobID
        self.status = status
        self.verdict = verdict
        self.exitCode = exitCode
        self.signal = signal
        self.reason = reason
        self.scriptType = scriptType
        self.scriptSnapshot = scriptSnapshot
        self.policyName = policyName
        self.policySnapshot = policySnapshot
        self.arguments = arguments
        self.environment = environment
        self.stdin = stdin
        self.priority = priority
        self.stdout = stdout
        self.stderr = stderr
        self.stdoutBytes = stdoutBytes
        self.stderrBytes = stderrBytes
        self.stdoutTruncated = stdoutTruncated
        self.stderrTruncated = stderrTruncated
        self.usage = usage
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.worker = worker
        self.leaseDeadline = leaseDeadline
        self.cancelRequested = cancelRequested
        self.takeovers = takeovers
        self.secretEnvironment = secretEnvironment
        self.tenant = tenant
        self.submittedBy = submittedBy
        self.weakerIsolation = weakerIsolation
    }
}
