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
