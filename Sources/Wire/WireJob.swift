/// A job as the server answers it (`Job` in the API document).
public struct WireJob: Codable, Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var script_type: String
    public var script_content: String
    public var policy: String
    /// The job's own limits, each as the server renders it (`"64MiB"`).
    public var limits: [String: WireScalar]
    public var concurrency: String
    public var arguments: [String]
    public var environment: [String: String]
    /// The names of its secret variables (never their values). Optional: older servers lack it.
    public var secret_environment: [String]?
    public var tenant: String?
    public var created_by: Int64?
    /// Its input files (path, size, executable). Optional: older servers lack it.
    public var files: [WireInputFileEntry]?
    /// Patterns of the files collected after each run. Optional: older servers lack it.
    public var outputs: [String]?
    /// Its schedule (null: none). Optional: older servers lack it.
    public var schedule: WireJobSchedule?
    /// Its retry policy (null: none). Optional: older servers lack it.
    public var retry: WireRetry?
    /// Where its runs' ends are POSTed (null: nowhere). Optional: older servers lack it.
    public var callback: WireCallback?
    public var created_at: String
    public var updated_at: String
    /// After a PATCH that changed the script, script type or policy: the secrets it cleared.
    public var secret_environment_cleared: [String]?

    public init(id: Int64, name: String, script_type: String, script_content: String, policy: String,
                limits: [String: WireScalar], concurrency: String, arguments: [String], environment: [String: String],
                secret_environment: [String]?, tenant: String?, created_by: Int64?, files: [WireInputFileEntry]? = nil,
                outputs: [String]? = nil, schedule: WireJobSchedule? = nil, retry: WireRetry? = nil, created_at: String,
                updated_at: String, secret_environment_cleared: [String]? = nil) {
        self.retry = retry
        self.callback = nil
        self.schedule = schedule
        self.files = files
        self.outputs = outputs
        self.id = id
        self.name = name
        self.script_type = script_type
        self.script_content = script_content
        self.policy = policy
        self.limits = limits
        self.concurrency = concurrency
        self.arguments = arguments
        self.environment = environment
        self.secret_environment = secret_environment
        self.tenant = tenant
        self.created_by = created_by
        self.created_at = created_at
        self.updated_at = updated_at
        self.secret_environment_cleared = secret_environment_cleared
    }
}

extension WireJob: WireAnswer {
    /// Only in the answer to a PATCH that cleared secrets.
    public static let absentWhenNil: Set<String> = ["secret_environment_cleared"]
}

/// The body of `POST /jobs` (`JobCreate`) and `PATCH /jobs/{id}` (`JobUpdate`): members left
/// nil are not sent.
public struct WireJobBody: Codable, Sendable, Equatable {
    public var name: String?
    public var script_type: String?
    public var script_content: String?
    public var policy: String?
    public var limits: [String: String]?
    public var concurrency: String?
    public var arguments: [String]?
    public var environment: [String: String]?
    public var secret_environment: [String: String]?
    /// Input files (a PATCH replaces them all).
    public var files: [WireInputFile]?
    /// Output patterns (a PATCH replaces them).
    public var outputs: [String]?
    /// The schedule (a PATCH replaces the members given; `null` removes it, which this type
    /// cannot send: `WireJobBody.removingSchedule`).
    public var schedule: WireJobScheduleBody?
    /// The retry policy (a PATCH replaces the members given; `null` removes it).
    public var retry: WireRetryBody?
    /// Where runs' ends are POSTed (`null` removes it); `callback_url` is the URL alone.
    public var callback: WireCallbackBody?
    public var callback_url: String?

    public init(name: String? = nil, script_type: String? = nil, script_content: String? = nil, policy: String? = nil,
                limits: [String: String]? = nil, concurrency: String? = nil, arguments: [String]? = nil,
                environment: [String: String]? = nil, secret_environment: [String: String]? = nil, files: [WireInputFile]? = nil,
                outputs: [String]? = nil) {
        self.files = files
        self.outputs = outputs
        self.name = name
        self.script_type = script_type
        self.script_content = script_content
        self.policy = policy
        self.limits = limits
        self.concurrency = concurrency
        self.arguments = arguments
        self.environment = environment
        self.secret_environment = secret_environment
    }

    /// Whether no member is set (a PATCH that would change nothing).
    public var isEmpty: Bool { self == WireJobBody() }
}

/// A string, or a number or boolean rendered as a string (limit values may be either).
public struct WireScalar: Codable, Sendable, Equatable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) { self.description = description }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            description = text
        } else if let integer = try? container.decode(Int64.self) {
            description = String(integer)
        } else if let number = try? container.decode(Double.self) {
            description = String(number)
        } else if let flag = try? container.decode(Bool.self) {
            description = String(flag)
        } else if container.decodeNil() {
            description = "null"
        } else {
            throw DecodingError.typeMismatch(String.self, .init(codingPath: decoder.codingPath, debugDescription: "expected a string or a number"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
