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
    /// Stores the first token: only when the store has none at all, checked and written
    /// atomically (of several servers starting at once on one database, exactly one gets it);
    /// nil when a token exists already.
    func createFirstToken(_ token: NewAccessToken) async throws -> AccessToken?
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

    // MARK: Idempotency keys
    /// Reserves `key` of `tenant` for a request with this digest: nil when the caller now holds
    /// it (no record, or one created before `expiredBefore`, which is replaced), else the
    /// record that holds it (the same or another request, answered or still in progress).
    /// Two callers at once: exactly one gets nil.
    func reserveIdempotencyKey(tenant: String, key: String, digest: Data, now: Date, expiredBefore: Date) async throws -> IdempotencyRecord?
    /// Takes over a reservation whose request will never be answered (its server stopped):
    /// true when this caller now holds it (the record still had `createdAt`, unanswered).
    func takeOverIdempotencyKey(tenant: String, key: String, createdAt: Date, now: Date) async throws -> Bool
    /// Records the answer of the request holding the key.
    func completeIdempotencyKey(tenant: String, key: String, answer: IdempotentAnswer) async throws
    /// Gives the key up (the request was refused and did nothing): a repeat is judged anew.
    func releaseIdempotencyKey(tenant: String, key: String) async throws
    /// The record of a key, if any.
    func idempotencyRecord(tenant: String, key: String) async throws -> IdempotencyRecord?
    /// Deletes the records created before `before`; returns how many.
    @discardableResult
    func purgeIdempotencyKeys(before: Date) async throws -> Int
}

/// What an idempotency key holds: the first request's digest, and its answer once given.
public struct IdempotencyRecord: Sendable, Equatable {
    public var digest: Data
    public var createdAt: Date
    /// nil while the first request is still being answered.
    public var answer: IdempotentAnswer?

    public init(digest: Data, createdAt: Date, answer: IdempotentAnswer?) {
        self.digest = digest
        self.createdAt = createdAt
        self.answer = answer
    }
}

/// How the answer to a request with an idempotency key is given again: its status, what it
/// created (`kind`: `job`, `run-accepted`, `run-execution`, and the id) and its `Location`.
public struct IdempotentAnswer: Sendable, Equatable {
    public var status: Int
    public var kind: String
    public var resourceID: Int64
    public var location: String?

    public init(status: Int, kind: String, resourceID: Int64, location: String? = nil) {
        self.status = status
        self.kind = kind
        self.resourceID = resourceID
        self.location = location
    }
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
