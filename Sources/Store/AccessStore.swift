import Domain
import Foundation

/// Persistence of API tokens (only their digests) and of the audit trail. Kept apart from
/// `ExecutionStore`: who may act is another concern than what runs. Methods throw `StoreError`.
public protocol AccessStore: Sendable {
    /// The version of the token set, cheap to read (no query): it changes whenever any process
    /// makes or revokes a token. nil: unknown (tokens must be read from the store each time).
    func tokensVersion() -> String?
    /// Stores a token by its digest.
    func createToken(_ token: NewAccessToken) async throws -> AccessToken
    /// The token with this digest and the digest as stored (for a constant-time comparison).
    func token(digest: Data) async throws -> (token: AccessToken, digest: Data)?
    func token(id: Int64) async throws -> AccessToken?
    /// Every token, revoked and expired ones included, by id.
    func tokens() async throws -> [AccessToken]
    /// Marks the token revoked at `now` (once: a second revocation keeps the first date).
    func revokeToken(id: Int64, now: Date) async throws -> AccessToken
    /// Records when a token was last used.
    func touchToken(id: Int64, at: Date) async throws
    /// Appends one entry to the audit trail; returns it with its id.
    @discardableResult
    func appendAudit(_ entry: AuditEntry) async throws -> AuditEntry
    /// A page of the audit trail, newest first.
    func audit(_ query: AuditQuery) async throws -> AuditPage
}

/// A token to store: everything but its id and dates of use.
public struct NewAccessToken: Sendable, Equatable {
    public var name: String
    public var role: Role
    public var tenant: String
    public var digest: Data
    public var policies: [String]?
    public var maxPolicy: String?
    public var maxActive: Int?
    /// The highest priority its runs may ask; nil: the role's default (`AccessToken.priorityCeiling`).
    public var maxPriority: Int?
    public var expiresAt: Date?
    public var createdBy: Int64?
    public var createdAt: Date

    public init(name: String, role: Role, tenant: String, digest: Data, policies: [String]? = nil, maxPolicy: String? = nil,
                maxActive: Int? = nil, expiresAt: Date? = nil, createdBy: Int64? = nil, createdAt: Date, maxPriority: Int? = nil) {
        self.maxPriority = maxPriority
        self.name = name
        self.role = role
        self.tenant = tenant
        self.digest = digest
        self.policies = policies
        self.maxPolicy = maxPolicy
        self.maxActive = maxActive
        self.expiresAt = expiresAt
        self.createdBy = createdBy
        self.createdAt = createdAt
    }
}

/// Which audit entries to list.
public struct AuditQuery: Sendable, Equatable {
    /// Only this action (`job.create`, …); nil for any.
    public var action: String?
    /// Only this token's actions.
    public var tokenID: Int64?
    /// Only entries about this target (`job`, `execution`, …) and id.
    public var targetType: String?
    public var targetID: String?
    /// Ids below this one (the previous page's cursor).
    public var before: Int64?
    public var limit: Int

    public init(action: String? = nil, tokenID: Int64? = nil, targetType: String? = nil, targetID: String? = nil,
                before: Int64? = nil, limit: Int = 100) {
        self.action = action
        self.tokenID = tokenID
        self.targetType = targetType
        self.targetID = targetID
        self.before = before
        self.limit = limit
    }
}

/// A page of the audit trail, newest first.
public struct AuditPage: Sendable, Equatable {
    public var entries: [AuditEntry]
    public var nextCursor: Int64?

    public init(entries: [AuditEntry], nextCursor: Int64?) {
        self.entries = entries
        self.nextCursor = nextCursor
    }
}
