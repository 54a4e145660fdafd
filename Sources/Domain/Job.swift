import Foundation

/// A stored script: created once, run many times. Editing a job never changes executions
/// already made from it (each keeps a snapshot).
public struct Job: Sendable, Equatable, Codable, Identifiable {
    public var id: Int64
    /// Unique among jobs.
    public var name: String
    public var scriptType: ScriptType
    public var scriptContent: String
    /// Name of the policy (a file of the policies folder) the job runs under.
    public var policy: String
    /// Tighter limits for every run of this job, as `NAME=VALUE` texts (`memory=64MiB`).
    public var limits: [String]
    /// What a run does while another run of the same job is pending or running.
    public var concurrency: ConcurrencyRule
    /// Arguments given to the script by default.
    public var arguments: [String]
    /// Environment variables given to the script (each must be allowed by the policy).
    public var environment: [String: String]
    /// Secret environment variables: name → value sealed by the server's key (never the plain
    /// value; opened only to start a sandbox).
    public var secretEnvironment: [String: String]
    /// The scope the job belongs to (the tenant of the token that created it); nil for jobs
    /// created before tokens existed, which only operators and admins see.
    public var tenant: String?
    /// The token that created it.
    public var createdBy: Int64?
    /// Its input files (paths, sizes; their bytes are read only to run it).
    public var files: [InputFileEntry]
    /// Glob patterns of the files collected from each run's working directory after it ends.
    public var outputs: [String] = []
    /// Its schedule, if it runs on one.
    public var schedule: JobSchedule?
    /// How its failed runs are retried, if they are.
    public var retry: RetryPolicy?
    /// Where to call when one of its runs ends (a run may give its own).
    public var callback: WebhookCallback?
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: Int64, name: String, scriptType: ScriptType, scriptContent: String, policy: String = "default",
                limits: [String] = [], concurrency: ConcurrencyRule = .forbid, arguments: [String] = [],
                environment: [String: String] = [:], secretEnvironment: [String: String] = [:], tenant: String? = nil,
                createdBy: Int64? = nil, files: [InputFileEntry] = [], createdAt: Date, updatedAt: Date) {
        self.files = files
        self.id = id
        self.name = name
        self.scriptType = scriptType
        self.scriptContent = scriptContent
        self.policy = policy
        self.limits = limits
        self.concurrency = concurrency
        self.arguments = arguments
        self.environment = environment
        self.secretEnvironment = secretEnvironment
        self.tenant = tenant
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// The kind of script, naming the interpreter that runs it (`python`, `bash`, and any an
/// operator adds in config).
public struct ScriptType: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let python = ScriptType("python")
    public static let bash = ScriptType("bash")

    public init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// What a run does while another run of the same job is pending or running.
public enum ConcurrencyRule: String, Sendable, Codable, CaseIterable {
    /// Refused (the earlier platform's behaviour, HTTP 409).
    case forbid
    /// Queued: runs one after another.
    case queue
    /// Runs alongside.
    case allow
}
