/// A problem document (RFC 9457), the body of every error answer (`Problem`). The members after
/// `field` are written only where they apply (`absentWhenNil`); the server answers with this type.
public struct WireProblem: Codable, Sendable, Equatable, WireAnswer {
    public var type: String?
    public var title: String?
    public var status: Int?
    public var detail: String?
    public var instance: String?
    public var field: String?
    /// With not-ready: each readiness check's result.
    public var checks: [String: String]?
    /// With quota-exceeded: the quota that was reached.
    public var quota: String?
    /// With a 503: the seconds of the Retry-After header.
    public var retry_after: Int?
    /// With not-ready: the isolation the server runs without.
    public var weaker_isolation: [String]?

    public static let absentWhenNil: Set<String> = ["checks", "quota", "retry_after", "weaker_isolation"]

    public init(type: String? = nil, title: String? = nil, status: Int? = nil, detail: String? = nil, instance: String? = nil,
                field: String? = nil, checks: [String: String]? = nil, quota: String? = nil, retry_after: Int? = nil,
                weaker_isolation: [String]? = nil) {
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
        self.instance = instance
        self.field = field
        self.checks = checks
        self.quota = quota
        self.retry_after = retry_after
        self.weaker_isolation = weaker_isolation
    }
}

/// A configured runtime (`Runtime`): how scripts of one type are started.
public struct WireRuntime: Codable, Sendable, Equatable {
    public var script_type: String
    public var command: [String]
    public var script_path: String

    public init(script_type: String, command: [String], script_path: String) {
        self.script_type = script_type
        self.command = command
        self.script_path = script_path
    }
}

/// The answer of `GET /health` (`Health`).
public struct WireHealth: Codable, Sendable, Equatable {
    public var status: String

    public init(status: String) { self.status = status }
}

/// The answer of `GET /ready` (`Ready`): each check's result, and the isolation the server
/// runs without.
public struct WireReady: Codable, Sendable, Equatable {
    public var status: String
    public var checks: [String: String]
    public var weaker_isolation: [String]

    public init(status: String, checks: [String: String], weaker_isolation: [String]) {
        self.status = status
        self.checks = checks
        self.weaker_isolation = weaker_isolation
    }
}
