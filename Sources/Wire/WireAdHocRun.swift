/// The body of `POST /executions` (`AdHocRunRequest`): a script and the options of one run of
/// it, no job stored. Members left nil are not sent; `script_type` and `script_content` are
/// required.
public struct WireAdHocRunRequest: Codable, Sendable, Equatable {
    public var script_type: String
    public var script_content: String
    public var policy: String?
    public var stdin: String?
    public var stdin_base64: String?
    public var arguments: [String]?
    public var environment: [String: String]?
    public var limits: [String: String]?
    public var priority: Int?
    public var wait: Bool?
    public var wait_timeout: Double?
    /// Input files for the working directory.
    public var files: [WireInputFile]?
    /// Patterns of the files to collect from the working directory after it ends.
    public var outputs: [String]?
    /// Where its end is POSTed; `callback_url` is the URL alone.
    public var callback: WireCallbackBody?
    public var callback_url: String?

    public init(script_type: String, script_content: String, policy: String? = nil, stdin: String? = nil,
                stdin_base64: String? = nil, arguments: [String]? = nil, environment: [String: String]? = nil,
                limits: [String: String]? = nil, priority: Int? = nil, wait: Bool? = nil, wait_timeout: Double? = nil,
                files: [WireInputFile]? = nil, outputs: [String]? = nil) {
        self.files = files
        self.outputs = outputs
        self.script_type = script_type
        self.script_content = script_content
        self.policy = policy
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
