/// The body of `POST /executions/batch` (`BatchRequest`): up to 100 runs, each of a stored job
/// (`job_id` and run options) or ad-hoc (`script_type`, `script_content`, …).
public struct WireBatchRequest: Codable, Sendable, Equatable {
    public var runs: [WireBatchRun]

    public init(runs: [WireBatchRun]) { self.runs = runs }
}

/// One run of a batch (`BatchRun`): `job_id` for a stored job's run, else an ad-hoc run.
public struct WireBatchRun: Codable, Sendable, Equatable {
    public var job_id: Int64?
    public var script_type: String?
    public var script_content: String?
    public var policy: String?
    public var stdin: String?
    public var stdin_base64: String?
    public var arguments: [String]?
    public var environment: [String: String]?
    public var limits: [String: String]?
    public var priority: Int?
    public var files: [WireInputFile]?
    public var outputs: [String]?

    public init(job_id: Int64? = nil, script_type: String? = nil, script_content: String? = nil, policy: String? = nil,
                stdin: String? = nil, stdin_base64: String? = nil, arguments: [String]? = nil,
                environment: [String: String]? = nil, limits: [String: String]? = nil, priority: Int? = nil,
                files: [WireInputFile]? = nil, outputs: [String]? = nil) {
        self.outputs = outputs
        self.job_id = job_id
        self.script_type = script_type
        self.script_content = script_content
        self.policy = policy
        self.stdin = stdin
        self.stdin_base64 = stdin_base64
        self.arguments = arguments
        self.environment = environment
        self.limits = limits
        self.priority = priority
        self.files = files
    }
}

/// The answer of a batch (`BatchAnswer`): one result per run, in order.
public struct WireBatchAnswer: Codable, Sendable, Equatable {
    public var results: [WireBatchResult]

    public init(results: [WireBatchResult]) { self.results = results }
}

/// One run's result (`BatchResult`): queued (`execution_id`, `status`), or refused (`problem`).
/// The server writes only the members of the result's kind.
public struct WireBatchResult: Codable, Sendable, Equatable, WireAnswer {
    public var execution_id: Int64?
    public var status: String?
    public var problem: WireProblem?

    public static let absentWhenNil: Set<String> = ["execution_id", "status", "problem"]

    /// A run that was queued.
    public init(execution_id: Int64, status: String) {
        self.execution_id = execution_id
        self.status = status
    }

    /// A run that was refused.
    public init(problem: WireProblem) { self.problem = problem }
}
