import Domain
import Foundation
import GRDB

/// Tokens and the audit trail in the same SQLite file as jobs and executions.
extension SQLiteStore: AccessStore {
    public func tokensVersion() -> String? { tokenSentinel.version() }

    public func createToken(_ token: NewAccessToken) async throws -> AccessToken {
        defer { tokenSentinel.touch() }
        return try await write { db in
            try Self.insertToken(db, token)
        }
    }

    /// Stores a new token in the caller's transaction and reads it back.
    static func insertToken(_ db: Database, _ token: NewAccessToken) throws -> AccessToken {
        try db.execute(sql: """
            INSERT INTO access_token (name, role, tenant, digest, policies, max_policy, max_active, created_at, expires_at,
                                      created_by, max_priority)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [token.name, token.role.rawValue, token.tenant, token.digest, token.policies.map(JSONText.encode),
                             token.maxPolicy, token.maxActive, Millis.of(token.createdAt), token.expiresAt.map(Millis.of),
                             token.createdBy, token.maxPriority])
        return try fetchToken(db, id: db.lastInsertedRowID)!
    }

    public func createFirstToken(_ token: NewAccessToken) async throws -> AccessToken? {
        defer { tokenSentinel.touch() }
        return try await write { db in
            guard try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM access_token") == 0 else { return nil }
            return try Self.insertToken(db, token)
        }
    }

    public func token(digest: Data) async throws -> (token: AccessToken, digest: Data)? {
        try await read { db in
            try Row.fetchOne(db, sql: Records.tokenSelect + " WHERE digest = ?", arguments: [digest]).map {
                (Records.token($0), $0[12] as Data)
            }
        }
    }

    public func token(id: Int64) async throws -> AccessToken? {
        try await read { db in try Self.fetchToken(db, id: id) }
    }

    public func tokens() async throws -> [AccessToken] {
        try await read { db in try Row.fetchAll(db, sql: Records.tokenSelect + " ORDER BY id").map(Records.token) }
    }

    public func revokeToken(id: Int64, now: Date) async throws -> AccessToken {
        defer { tokenSentinel.touch() }
        return try await write { db in
            try db.execute(sql: "UPDATE access_token SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
                           arguments: [Millis.of(now), id])
            guard let token = try Self.fetchToken(db, id: id) else { throw StoreError.notFound("token \(id)") }
            return token
        }
    }

    public func touchToken(id: Int64, at date: Date) async throws {
        try await write { db in
            try db.execute(sql: "UPDATE access_token SET last_used_at = max(COALESCE(last_used_at, 0), ?) WHERE id = ?",
                           arguments: [Millis.of(date), id])
        }
    }

    @discardableResult
    public func appendAudit(_ entry: AuditEntry) async throws -> AuditEntry {
        try await write { db in try Self.insertAudit(db, entry) }
    }

    /// Appends `entry` to the audit trail inside the caller's transaction.
    static func insertAudit(_ db: Database, _ entry: AuditEntry) throws -> AuditEntry {
        try db.cached("""
            INSERT INTO audit (at, token_id, token_name, role, action, target_type, target_id, address, detail)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [Millis.of(entry.at), entry.tokenID, entry.tokenName, entry.role?.rawValue, entry.action,
                                     entry.targetType, entry.targetID, entry.address, entry.detail])
        var stored = entry
        stored.id = db.lastInsertedRowID
        return stored
    }

    public func audit(_ query: AuditQuery) async throws -> AuditPage {
        var conditions = Conditions()
        conditions.add("action = ?", query.action)
        conditions.add("token_id = ?", query.tokenID)
        conditions.add("target_type = ?", query.targetType)
        conditions.add("target_id = ?", query.targetID)
        conditions.add("id < ?", query.before)
        let limit = max(1, min(1000, query.limit))
        let sql = Records.auditSelect + conditions.sql + " ORDER BY id DESC LIMIT \(limit + 1)"
        let arguments = conditions.arguments
        return try await read { db in
            let rows = try Row.fetchAll(db, sql: sql, arguments: arguments)
            let page = rows.prefix(limit).map(Records.audit)
            return AuditPage(entries: Array(page), nextCursor: rows.count > limit ? page.last?.id : nil)
        }
    }

    static func fetchToken(_ db: Database, id: Int64) throws -> AccessToken? {
        try Row.fetchOne(db, sql: Records.tokenSelect + " WHERE id = ?", arguments: [id]).map(Records.token)
    }
}
