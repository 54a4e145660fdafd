import Domain
import Foundation

/// Options of one run of a job.
public struct RunOptions: Sendable, Equatable {
    /// Arguments for the script; nil: the job's default arguments.
    public var arguments: [String]?
    /// Variables added to the job's (each allowed by the policy).
    public var environment: [String: String]
    public var stdin: Data?
    /// Tighter limits for this run (`memory=64MiB`), on top of the job's.
    public var limits: [String]
    public var priority: Int
    /// The token submitting the run, and its quota of executions pending or running at once.
    public var submittedBy: Int64?
    public var maxActive: Int?
    /// Input files added to the job's (a file of the same path replaces the job's).
    public var files: [InputFile] = []
    /// Output patterns added to the job's.
    public var outputs: [String] = []
    /// The submission's entry in the audit trail, recorded in the transaction that queues the
    /// execution (its `targetID` becomes the new execution's id): no run without its entry.
    public var audit: AuditEntry?

    public init(arguments: [String]? = nil, environment: [String: String] = [:], stdin: Data? = nil,
                limits: [String] = [], priority: Int = 0, submittedBy: Int64? = nil, maxActive: Int? = nil) {
        self.arguments = arguments
        self.environment = environment
        self.stdin = stdin
        self.limits = limits
        self.priority = priority
        self.submittedBy = submittedBy
        self.maxActive = maxActive
    }
}

/// The script of an ad-hoc run (`POST /executions`): what a job would hold, given with the run.
public struct AdHocScript: Sendable, Equatable {
    public var scriptType: ScriptType
    public var content: String
    /// The policy it runs under (a name of the policies folder).
    public var policy: String
    /// The tenant the execution belongs to: the submitting token's.
    public var tenant: String?

    public init(scriptType: ScriptType, content: String, policy: String = "default", tenant: String? = nil) {
        self.scriptType = scriptType
        self.content = content
        self.policy = policy
        self.tenant = tenant
    }
}
