import Domain
import Foundation
import NIOCore
import PostgresNIO

// Tokens, the audit trail, idempotency keys and retention on PostgreSQL.

extension PostgresStore {
    public func createToken(_ token: NewAccessToken) async throws -> AccessToken {
        let logger = self.logger
        let id = try await withConnection { try await Self.insertToken($0, token, logger) }
        return try await self.token(id: id)!
    }

    /// Under an advisory lock, so that of nodes starting at once exactly one finds no token.
    public func createFirstToken(_ token: NewAccessToken) async throws -> AccessToken? {
        let logger = self.logger
        let id: Int64? = try await transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Int32(0x636f)), \(Int32(2)))", logger: logger)
            guard try await connection.first("SELECT 1 FROM access_token LIMIT 1", logger) == nil else { return nil }
            return try await Self.insertToken(connection, token, logger)
        }
        guard let id else { return nil }
        return try await self.token(id: id)
    }

    private static func insertToken(_ connection: PostgresConnection, _ token: NewAccessToken, _ logger: Logger) async throws -> Int64 {
        var q = SQL()
        q.append("""
            INSERT INTO access_token (name, role, tenant, digest, policies, max_policy, max_active, created_at, expires_at,
                                      created_by, max_priority)
            VALUES (\(q.bind(token.name)), \(q.bind(token.role.rawValue)), \(q.bind(token.tenant)), \(q.bind(token.digest)),
                    \(q.bind(token.policies.map { JSONText.encode($0) })), \(q.bind(token.maxPolicy)), \(q.bind(token.maxActive.map(Int64.init))),
                    \(q.bind(Millis.of(token.createdAt))), \(q.bind(token.expiresAt.map(Millis.of))), \(q.bind(token.createdBy)),
                    \(q.bind(token.maxPriority.map(Int64.init))))
            RETURNING id
            """)
        return try await connection.first(q.query, logger)!.decode(Int64.self)
    }

    public func token(digest: Data) async throws -> (token: AccessToken, digest: Data)? {
        var binds = PostgresBindings()
        binds.append(ByteBuffer(bytes: digest))
        return try await rows(PostgresStatements.TokenByDigest.self, binds).first.map(PostgresRecords.token)
    }

    public func token(id: Int64) async throws -> AccessToken? {
        var q = SQL(Records.tokenSelect)
        q.append(" WHERE id = \(q.bind(id))")
        return try await rows(q.query).first.map { try PostgresRecords.token($0).0 }
    }

    public func tokens() async throws -> [AccessToken] {
        try await rows(PostgresQuery(unsafeSQL: Records.tokenSelect + " ORDER BY id")).map { try PostgresRecords.token($0).0 }
    }

    public func revokeToken(id: Int64, now: Date) async throws -> AccessToken {
        var q = SQL()
        q.append("UPDATE access_token SET revoked_at = COALESCE(revoked_at, \(q.bind(Millis.of(now)))) WHERE id = \(q.bind(id))")
        try await rows(q.query)
        guard let token = try await token(id: id) else { throw StoreError.notFound("token \(id)") }
        return token
    }

    public func touchToken(id: Int64, at date: Date) async throws {
        var q = SQL()
        q.append("UPDATE access_token SET last_used_at = GREATEST(COALESCE(last_used_at, 0), \(q.bind(Millis.of(date)))) WHERE id = \(q.bind(id))")
        try await rows(q.query)
    }

    @discardableResult
    public func appendAudit(_ entry: AuditEntry) async throws -> AuditEntry {
        let logger = self.logger
        return try await withConnection { try await Self.insertAudit($0, entry, logger) }
    }

    /// Appends `entry` to the audit trail inside the caller's transaction.
    static func insertAudit(_ connection: PostgresConnection, _ entry: AuditEntry, _ logger: Logger) async throws -> AuditEntry {
        var q = SQL()
        q.append("""
            INSERT INTO audit (at, token_id, token_name, role, action, target_type, target_id, address, detail)
            VALUES (\(q.bind(Millis.of(entry.at))), \(q.bind(entry.tokenID)), \(q.bind(entry.tokenName)), \(q.bind(entry.role?.rawValue)),
                    \(q.bind(entry.action)), \(q.bind(entry.targetType)), \(q.bind(entry.targetID)), \(q.bind(entry.address)),
                    \(q.bind(entry.detail)))
            RETURNING id
            """)
        var stored = entry
        stored.id = try await connection.first(q.query, logger)!.decode(Int64.self)
        return stored
    }

    public func audit(_ query: AuditQuery) async throws -> AuditPage {
        var q = SQL(Records.auditSelect)
        var clauses: [String] = []
        if let action = query.action { clauses.append("action = \(q.bind(action))") }
        if let tokenID = query.tokenID { clauses.append("token_id = \(q.bind(tokenID))") }
        if let targetType = query.targetType { clauses.append("target_type = \(q.bind(targetType))") }
        if let targetID = query.targetID { clauses.append("target_id = \(q.bind(targetID))") }
        if let before = query.before { clauses.append("id < \(q.bind(before))") }
        if !clauses.isEmpty { q.append(" WHERE " + clauses.joined(separator: " AND ")) }
        let limit = max(1, min(1000, query.limit))
        q.append(" ORDER BY id DESC LIMIT \(q.bind(Int64(limit + 1)))")
        let rows = try await rows(q.query)
        let page = try rows.prefix(limit).map(PostgresRecords.audit)
        return AuditPage(entries: page, nextCursor: rows.count > limit ? page.last?.id : nil)
    }

    // MARK: Idempotency keys

    public func reserveIdempotencyKey(tenant: String, key: String, digest: Data, now: Date,
                                      expiredBefore: Date) async throws -> IdempotencyRecord? {
        let logger = self.logger
        return try await transaction { connection in
            var expire = SQL()
            expire.append("""
                DELETE FROM idempotency_key WHERE tenant = \(expire.bind(tenant)) AND key = \(expire.bind(key))
                  AND created_at < \(expire.bind(Millis.of(expiredBefore)))
                """)
            try await connection.query(expire.query, logger: logger)
            var insert = SQL()
            insert.append("""
                INSERT INTO idempotency_key (tenant, key, request_digest, created_at)
                VALUES (\(insert.bind(tenant)), \(insert.bind(key)), \(insert.bind(digest)), \(insert.bind(Millis.of(now))))
                ON CONFLICT (tenant, key) DO NOTHING RETURNING 1
                """)
            if try await connection.changed(insert.query, logger) == 1 { return nil }
            return try await Self.fetchIdempotency(connection, tenant: tenant, key: key, logger)
        }
    }

    public func takeOverIdempotencyKey(tenant: String, key: String, createdAt: Date, now: Date) async throws -> Bool {
        var q = SQL()
        q.append("""
            UPDATE idempotency_key SET created_at = \(q.bind(Millis.of(now)))
            WHERE tenant = \(q.bind(tenant)) AND key = \(q.bind(key)) AND created_at = \(q.bind(Millis.of(createdAt))) AND status IS NULL
            RETURNING 1
            """)
        return try await rows(q.query).count == 1
    }

    public func completeIdempotencyKey(tenant: String, key: String, answer: IdempotentAnswer) async throws {
        var q = SQL()
        q.append("""
            UPDATE idempotency_key SET status = \(q.bind(Int64(answer.status))), kind = \(q.bind(answer.kind)),
              resource_id = \(q.bind(answer.resourceID)), location = \(q.bind(answer.location))
            WHERE tenant = \(q.bind(tenant)) AND key = \(q.bind(key))
            """)
        try await rows(q.query)
    }

    public func releaseIdempotencyKey(tenant: String, key: String) async throws {
        var q = SQL()
        q.append("DELETE FROM idempotency_key WHERE tenant = \(q.bind(tenant)) AND key = \(q.bind(key)) AND status IS NULL")
        try await rows(q.query)
    }

    public func idempotencyRecord(tenant: String, key: String) async throws -> IdempotencyRecord? {
        let logger = self.logger
        return try await withConnection { try await Self.fetchIdempotency($0, tenant: tenant, key: key, logger) }
    }

    @discardableResult
    public func purgeIdempotencyKeys(before: Date) async throws -> Int {
        var deleted = 0
        while true {
            var q = SQL()
            q.append("""
                DELETE FROM idempotency_key WHERE (tenant, key) IN (
                  SELECT tenant, key FROM idempotency_key WHERE created_at < \(q.bind(Millis.of(before))) LIMIT \(q.bind(Int64(Self.pruneBatch))))
                RETURNING 1
                """)
            let count = try await rows(q.query).count
            deleted += count
            if count < Self.pruneBatch { return deleted }
        }
    }

    static func fetchIdempotency(_ connection: PostgresConnection, tenant: String, key: String, _ logger: Logger) async throws
        -> IdempotencyRecord? {
        var q = SQL()
        q.append("""
            SELECT request_digest, created_at, status, kind, resource_id, location FROM idempotency_key
            WHERE tenant = \(q.bind(tenant)) AND key = \(q.bind(key))
            """)
        guard let row = try await connection.first(q.query, logger) else { return nil }
        let (digest, created, status, kind, id, location) = try row.decode((Data, Int64, Int64?, String?, Int64?, String?).self)
        var answer: IdempotentAnswer?
        if let status, let kind, let id { answer = IdempotentAnswer(status: Int(status), kind: kind, resourceID: id, location: location) }
        return IdempotencyRecord(digest: digest, createdAt: Millis.date(created), answer: answer)
    }

    // MARK: Retention

    /// How many rows one pruning statement deletes at most (as SQLite's).
    static var pruneBatch: Int { SQLiteStore.pruneBatch }

    /// Deletes in statements of at most `pruneBatch` rows, each guarded on the status. Dead
    /// rows are left to autovacuum, which the deletions in batches keep busy but never behind.
    public func prune(keepPerJob: Int?, olderThan: Date?) async throws -> Int {
        var deleted = 0
        if let keepPerJob {
            var q = SQL()
            q.append("""
                SELECT id FROM (
                  SELECT id, ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY id DESC) AS n
                  FROM execution WHERE job_id IS NOT NULL AND status NOT IN ('PENDING', 'RUNNING')) ranked
                WHERE n > \(q.bind(Int64(max(0, keepPerJob))))
                """)
            let ids = try await rows(q.query).map { try $0.decode(Int64.self) }
            var start = 0
            while start < ids.count {
                let batch = Array(ids[start..<min(ids.count, start + Self.pruneBatch)])
                start += batch.count
                var delete = SQL()
                delete.append("""
                    DELETE FROM execution WHERE id = ANY(\(delete.bind(batch))) AND status NOT IN ('PENDING', 'RUNNING') RETURNING 1
                    """)
                deleted += try await rows(delete.query).count
            }
        }
        if let olderThan {
            while true {
                var q = SQL()
                q.append("""
                    DELETE FROM execution WHERE id IN (
                      SELECT id FROM execution WHERE finished_at < \(q.bind(Millis.of(olderThan)))
                        AND status NOT IN ('PENDING', 'RUNNING') LIMIT \(q.bind(Int64(Self.pruneBatch))))
                    RETURNING 1
                    """)
                let count = try await rows(q.query).count
                deleted += count
                if count < Self.pruneBatch { break }
            }
        }
        return deleted
    }
}
