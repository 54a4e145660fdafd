import Foundation

/// What a token may do. Each role includes the ones below it:
/// `admin` ⊃ `operator` ⊃ `submitter` ⊃ `viewer`, except that `submitter` and `viewer` see only
/// their own scope (their tenant's jobs and executions) while `operator` and `admin` see all.
public enum Role: String, Sendable, Codable, CaseIterable, Comparable {
    /// Read-only, own scope.
    case viewer
    /// Creates jobs and runs them; sees, edits and cancels only its own scope.
    case submitter
    /// Every job and execution; reads policies.
    case `operator`
    /// Everything, tokens, policies reload and the audit trail included.
    case admin

    private var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }

    /// Whether this role sees every tenant's jobs and executions.
    public var seesAll: Bool { self >= .operator }
}

/// An API token as stored: never the token itself, only its SHA-256 digest, with who it is,
/// what it may do, and its quotas. Revocation and expiry take effect at the next request.
public struct AccessToken: Sendable, Equatable {
    public var id: Int64
    /// A label for people ("ci-deploy", "alice laptop"); not unique.
    public var name: String
    public var role: Role
    /// The scope a submitter's or viewer's token sees: jobs created by tokens of the same
    /// tenant. Defaults to the token's name.
    public var tenant: String
    /// Policies this token may use; nil: any (within `maxPolicy`).
    public var policies: [String]?
    /// The loosest policy this token may run under: a job's effective policy must be no
    /// looser (network, every limit) than it. nil: no ceiling.
    public var maxPolicy: String?
    /// At most this many of the token's executions PENDING or RUNNING at once; nil: no quota.
    public var maxActive: Int?
    /// The highest priority this token's runs may ask (-100…100); nil: the role's default
    /// (`priorityCeiling`).
    public var maxPriority: Int?
    public var createdAt: Date
    public var expiresAt: Date?
    public var lastUsedAt: Date?
    public var revokedAt: Date?
    /// The token that created this one (nil: made by the server at first start or by
    /// `confine token create --database`).
    public var createdBy: Int64?

    public init(id: Int64, name: String, role: Role, tenant: String, policies: [String]? = nil, maxPolicy: String? = nil,
                maxActive: Int? = nil, createdAt: Date, expiresAt: Date? = nil, lastUsedAt: Date? = nil,
                revokedAt: Date? = nil, createdBy: Int64? = nil, maxPriority: Int? = nil) {
        self.maxPriority = maxPriority
        self.id = id
        self.name = name
        self.role = role
        self.tenant = tenant
        self.policies = policies
        self.maxPolicy = maxPolicy
        self.maxActive = maxActive
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
        self.createdBy = createdBy
    }

    /// The highest priority this token's runs may ask: `maxPriority`, or by default 0 (the
    /// ordinary priority: a submitter cannot put its work ahead of other tenants' unless its
    /// token allows it) for submitters and viewers, 100 (any) for operators and admins.
    public var priorityCeiling: Int { maxPriority ?? (role.seesAll ? 100 : 0) }

    /// Why the token cannot be used at `now`, or nil when it can.
    public func refusal(at now: Date) -> String? {
        if revokedAt != nil { return "the token was revoked" }
        if let expiresAt, expiresAt <= now { return "the token expired" }
        return nil
    }
}

/// One line of the audit trail: who did what to which object, from which address. Never a
/// token or a secret value.
public struct AuditEntry: Sendable, Equatable {
    public var id: Int64
    public var at: Date
    /// The acting token (nil: the server itself or the command line on the database).
    public var tokenID: Int64?
    public var tokenName: String?
    public var role: Role?
    /// `job.create`, `job.update`, `job.delete`, `execution.run`, `execution.cancel`,
    /// `token.create`, `token.revoke`, `policies.reload`.
    public var action: String
    /// `job`, `execution`, `token`, `policies`.
    public var targetType: String
    public var targetID: String?
    /// The client's address.
    public var address: String?
    /// What changed, in words (names of fields, never values of secrets).
    public var detail: String?

    public init(id: Int64 = 0, at: Date, tokenID: Int64?, tokenName: String?, role: Role?, action: String,
                targetType: String, targetID: String?, address: String?, detail: String?) {
        self.id = id
        self.at = at
        self.tokenID = tokenID
        self.tokenName = tokenName
        self.role = role
        self.action = action
        self.targetType = targetType
        self.targetID = targetID
        self.address = address
        self.detail = detail
    }
}
