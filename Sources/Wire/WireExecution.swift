/// An execution as the server answers it: `Execution` (`GET /executions/{id}`), `RunExecution`
/// (a run with `wait`, which adds `execution_id`) and `ExecutionSummary` (listings and the
/// `end` event of a followed output, without the output members). Confine's extras are optional
/// so that a client still reads a server that lacks some of them.
public struct WireExecution: Codable, Sendable, Equatable {
    /// Only in the answer of a run with `wait` (= `id`).
    public var execution_id: Int64?
    public var id: Int64
    /// The job run; nil for an ad-hoc run (`POST /executions`).
    public var job_id: Int64?
    public var status: String
    public var stdout: String?
    public var stderr: String?
    public var exit_code: Int32?
    public var created_at: String
    public var finished_at: String?
    public var started_at: String?
    public var verdict: String?
    public var signal: Int32?
    public var signal_name: String?
    public var reason: String?
    public var script_type: String?
    public var policy: String?
    public var arguments: [String]?
    public var priority: Int?
    public var tenant: String?
    public var submitted_by: Int64?
    public var stdout_encoding: String?
    public var stderr_encoding: String?
    public var stdout_invalid_utf8: Bool?
    public var stderr_invalid_utf8: Bool?
    public var stdout_bytes: Int64?
    public var stderr_bytes: Int64?
    public var stdout_truncated: Bool?
    public var stderr_truncated: Bool?
    public var usage: WireUsage?
    public var worker: String?
    /// The node that ran it (`node_name` of the `confine serve` that claimed it); nil while PENDING.
    public var node: String?
    public var cancel_requested: Bool?
    public var weaker_isolation: [String]?
    /// The calls its policy refused (null: not known).
    public var denied: [WireDeniedCall]?
    /// What started it: `api`, `ad_hoc`, `batch`, `schedule`, `retry`.
    public var trigger: String?
    /// The schedule's slot it ran for (trigger `schedule`).
    public var scheduled_for: String?
    /// Which attempt of its chain it is (1: the first run), and the execution it retries.
    public var attempt: Int?
    public var retry_of: Int64?
    /// A queued retry: the earliest it may start.
    public var not_before: String?

    /// Whether the execution has ended (every status but PENDING and RUNNING).
    public var isFinal: Bool { status != "PENDING" && status != "RUNNING" }

    /// An execution with its required members; the others are set one by one.
    public init(id: Int64, job_id: Int64?, status: String, created_at: String) {
        self.id = id
        self.job_id = job_id
        self.status = status
        self.created_at = created_at
    }
}

extension WireExecution: WireAnswer {
    /// `execution_id` is only in a waited run's answer (`RunExecution`), the output members only
    /// where the output is answered (not in `ExecutionSummary`).
    public static let absentWhenNil: Set<String> = [
        "execution_id", "stdout", "stderr", "stdout_encoding", "stderr_encoding", "stdout_invalid_utf8", "stderr_invalid_utf8",
    ]
}

/// What a run used (`Usage`).
public struct WireUsage: Codable, Sendable, Equatable {
    public var wall_ms: Int64?
    public var cpu_ms: Int64?
    public var memory_peak_bytes: Int64?

    public init(wall_ms: Int64?, cpu_ms: Int64?, memory_peak_bytes: Int64?) {
        self.wall_ms = wall_ms
        self.cpu_ms = cpu_ms
        self.memory_peak_bytes = memory_peak_bytes
    }
}

/// One page of `GET /executions` (`ExecutionPage`).
public struct WireExecutionPage: Codable, Sendable, Equatable {
    public var executions: [WireExecution]
    public var next_cursor: String?

    public init(executions: [WireExecution], next_cursor: String?) {
        self.executions = executions
        self.next_cursor = next_cursor
    }
}

/// The body of `POST /executions/{job_id}/run` (`RunRequest`): members left nil are not sent.
public struct WireRunRequest: Codable, Sendable, Equatable {
    public var stdin: String?
    public var stdin_base64: String?
    public var arguments: [String]?
    public var environment: [String: String]?
    public var limits: [String: String]?
    public var priority: Int?
    public var wait: Bool?
    public var wait_timeout: Double?
    /// Input files added to the job's (one of the same path replaces the job's).
    public var files: [WireInputFile]?
    /// Output patterns added to the job's.
    public var outputs: [String]?
    /// Where this run's end is POSTed (instead of the job's callback); `callback_url` is the URL alone.
    public var callback: WireCallbackBody?
    public var callback_url: String?

    public init(stdin: String? = nil, stdin_base64: String? = nil, arguments: [String]? = nil,
                environment: [String: String]? = nil, limits: [String: String]? = nil, priority: Int? = nil,
                wait: Bool? = nil, wait_timeout: Double? = nil, files: [WireInputFile]? = nil,
                outputs: [String]? = nil) {
        self.files = files
        self.outputs = outputs
        self.stdin = stdin
        self.stdin_base64 = stdin_base64
        self.arguments = arguments
        self.environment = environment
        self.limits = limits
        self.priority = priority
        self.wait = wait
        self.wait_timeout = wait_timeout
    }
}

/// The answer of a run request without `wait` (`RunAccepted`), and the id member of one with it.
public struct WireRunAccepted: Codable, Sendable, Equatable {
    public var execution_id: Int64
    public var status: String

    public init(execution_id: Int64, status: String) {
        self.execution_id = execution_id
        self.status = status
    }
}

/// The `data` of an `output` event of a followed output (`FollowOutputData`).
public struct WireOutputEvent: Codable, Sendable, Equatable {
    public var stream: String
    public var offset: Int64
    public var encoding: String
    public var data: String

    public init(stream: String, offset: Int64, encoding: String, data: String) {
        self.stream = stream
        self.offset = offset
        self.encoding = encoding
        self.data = data
    }
}

/// The `data` of a `capped` event (`FollowCappedData`).
public struct WireCappedEvent: Codable, Sendable, Equatable {
    public var stream: String
    public var limit_bytes: Int64
    public var detail: String

    public init(stream: String, limit_bytes: Int64, detail: String) {
        self.stream = stream
        self.limit_bytes = limit_bytes
        self.detail = detail
    }
}

/// The `data` of a `deleted` event (`FollowDeletedData`).
public struct WireDeletedEvent: Codable, Sendable, Equatable {
    public var execution_id: Int64
    public var detail: String

    public init(execution_id: Int64, detail: String) {
        self.execution_id = execution_id
        self.detail = detail
    }
}
