import Foundation
import GRDB

// Idempotency keys: reserved in one write transaction (the primary key makes one of two
// simultaneous requests the holder), answered, released, expired.

extension SQLiteStore {
    public func reserveIdempotencyKey(tenant: String, key: String, digest: Data, now: Date,
                                      expiredBefore: Date) async throws -> IdempotencyRecord? {
        try await write { db in
            try db.cached("DELETE FROM idempotency_key WHERE tenant = ? AND key = ? AND created_at < ?")
                .execute(arguments: [tenant, key, Millis.of(expiredBefore)])
            try db.cached("""
                INSERT INTO idempotency_key (tenant, key, request_digest, created_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (tenant, key) DO NOTHING
                """).execute(arguments: [tenant, key, digest, Millis.of(now)])
            if db.changesCount == 1 { return nil }
            return try Self.fetchIdempotency(db, tenant: tenant, key: key)
        }
    }

    public func takeOverIdempotencyKey(tenant: String, key: String, createdAt: Date, now: Date) async throws -> Bool {
        try await write { db in
            try db.cached("""
                UPDATE idempotency_key SET created_at = ? WHERE tenant = ? AND key = ? AND created_at = ? AND status IS NULL
                """).execute(arguments: [Millis.of(now), tenant, key, Millis.of(createdAt)])
            return db.changesCount == 1
        }
    }

    public func completeIdempotencyKey(tenant: String, key: String, answer: IdempotentAnswer) async throws {
        try await write { db in
            try db.cached("""
                UPDATE idempotency_key SET status = ?, kind = ?, resource_id = ?, location = ? WHERE tenant = ? AND key = ?
                """).execute(arguments: [answer.status, answer.kind, answer.resourceID, answer.location, tenant, key])
        }
    }

    public func releaseIdempotencyKey(tenant: String, key: String) async throws {
        try await write { db in
            try db.cached("DELETE FROM idempotency_key WHERE tenant = ? AND key = ? AND status IS NULL")
                .execute(arguments: [tenant, key])
        }
    }

    public func idempotencyRecord(tenant: String, key: String) async throws -> IdempotencyRecord? {
        try await read { db in try Self.fetchIdempotency(db, tenant: tenant, key: key) }
    }

    @discardableResult
    public func purgeIdempotencyKeys(before: Date) async throws -> Int {
        var deleted = 0
        while true {
            let count = try await write { db in
                try db.execute(sql: """
                    DELETE FROM idempotency_key WHERE rowid IN (SELECT rowid FROM idempotency_key WHERE created_at < ? LIMIT ?)
                    """, arguments: [Millis.of(before), Self.pruneBatch])
                return db.changesCount
            }
            deleted += count
            if count < Self.pruneBatch { return deleted }
        }
    }

    static func fetchIdempotency(_ db: Database, tenant: String, key: String) throws -> IdempotencyRecord? {
        guard let row = try Row.fetchOne(db.cached("""
            SELECT request_digest, created_at, status, kind, resource_id, location FROM idempotency_key WHERE tenant = ? AND key = ?
            """), arguments: [tenant, key]) else { return nil }
        let status: Int? = row[2], kind: String? = row[3], id: Int64? = row[4]
        var answer: IdempotentAnswer?
        if let status, let kind, let id { answer = IdempotentAnswer(status: status, kind: kind, resourceID: id, location: row[5]) }
        return IdempotencyRecord(digest: row[0], createdAt: Millis.date(row[1]), answer: answer)
    }
}
