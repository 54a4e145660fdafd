/// A problem document (RFC 9457), the body of every error answer (`Problem`).
public struct WireProblem: Codable, Sendable, Equatable {
    public var type: String?
    public var title: String?
    public var status: Int?
    public var detail: String?
    public var instance: String?
    public var field: String?
    /// With a 503: the seconds of the Retry-After header.
    public var retry_after: Int?
    /// With quota-exceeded: the quota that was reached.
    public var quota: String?
    /// With not-ready: each readiness check's result.
    public var checks: [String: String]?
    public var weaker_isolation: [String]?
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

/// A policy's effective values (`Policy`): the members every policy has. The document allows
/// more (further sections of the policy rendered as JSON); a decoder reads past them.
public struct WirePolicy: Codable, Sendable, Equatable {
    public var name: String
    public var description: String?
    /// Every limit as a string, nil where unlimited.
    public var limits: [String: String?]
    public var overridable: [String]
    public var network: String
    public var environment: WireAnyObject
    public var filesystem: WireAnyObject
    public var seccomp: WireAnyObject
    public var yaml: String
}

/// An object whose members this client does not read (a policy's sections): decoded as
/// "some JSON object", encoded as an empty one.
public struct WireAnyObject: Codable, Sendable, Equatable {
    public init() {}

    public init(from decoder: any Decoder) throws {
        _ = try decoder.container(keyedBy: AnyKey.self)
    }

    public func encode(to encoder: any Encoder) throws {
        _ = encoder.container(keyedBy: AnyKey.self)
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
