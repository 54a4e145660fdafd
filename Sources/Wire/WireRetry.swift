/// A job's retry policy as the server answers it (`Retry`): durations in human units (`10s`).
public struct WireRetry: Codable, Sendable, Equatable {
    /// Attempts in all, the first included.
    public var max_attempts: Int
    /// The statuses and verdicts retried (`FAILED`, `TIMED_OUT`, `memory_limit`, `interrupted`…).
    public var on: [String]
    public var initial_delay: String
    public var max_delay: String
    public var multiplier: Double
    public var jitter: Bool

    public init(max_attempts: Int, on: [String], initial_delay: String, max_delay: String, multiplier: Double, jitter: Bool) {
        self.max_attempts = max_attempts
        self.on = on
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.multiplier = multiplier
        self.jitter = jitter
    }
}

/// The `retry` member of a job's body (`RetryBody`): on a PATCH the members given replace the
/// current ones; `null` for the whole member removes the policy. Durations are texts with a
/// unit (`10s`, `10m`) or numbers of seconds.
public struct WireRetryBody: Codable, Sendable, Equatable {
    public var max_attempts: Int?
    public var on: [String]?
    public var initial_delay: WireScalar?
    public var max_delay: WireScalar?
    public var multiplier: Double?
    public var jitter: Bool?

    public init(max_attempts: Int? = nil, on: [String]? = nil, initial_delay: WireScalar? = nil, max_delay: WireScalar? = nil,
                multiplier: Double? = nil, jitter: Bool? = nil) {
        self.max_attempts = max_attempts
        self.on = on
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.multiplier = multiplier
        self.jitter = jitter
    }
}
