import Domain
import Foundation
import GRDB

// Webhooks: the tenants' secrets (sealed), the delivery queue (queued with an execution's end,
// claimed with a lease, attempts recorded) and an execution's deliveries.

extension SQLiteStore {
    public func webhookSecret(tenant: String) async throws -> (sealed: String, createdAt: Date)? {
        try await read { db in
            try Row.fetchOne(db.cached("SELECT sealed, created_at FROM webhook_secret WHERE tenant = ?"), arguments: [tenant])
                .map { (sealed: $0[0] as String, createdAt: Millis.date($0[1])) }
        }
    }

    public func setWebhookSecret(tenant: String, sealed: String, now: Date) async throws {
        try await write { db in
            try db.cached("""
                INSERT INTO webhook_secret (tenant, sealed, created_at) VALUES (?, ?, ?)
                ON CONFLICT (tenant) DO UPDATE SET sealed = excluded.sealed, created_at = excluded.created_at
                """).execute(arguments: [tenant, sealed, Millis.of(now)])
        }
    }

    public func claimDueDeliveries(now: Date, leaseUntil: Date, limit: Int) async throws -> [WebhookDelivery] {
        try await write { db in
            let ids = try String.fetchAll(db.cached("""
                SELECT id FROM webhook_delivery WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?
                """), arguments: [Millis.of(now), max(1, limit)])
            var claimed: [WebhookDelivery] = []
            for id in ids {
                try db.cached("UPDATE webhook_delivery SET next_attempt_at = ? WHERE id = ?").execute(arguments: [Millis.of(leaseUntil), id])
                if let delivery = try Self.fetchDelivery(db, id: id) { claimed.append(delivery) }
            }
            return claimed
        }
    }

    public func recordDeliveryAttempt(id: String, _ attempt: WebhookAttempt, status: WebhookDeliveryStatus,
                                      nextAttemptAt: Date?) async throws {
        try await write { db in
            let number = (try Int.fetchOne(db.cached("SELECT COUNT(*) FROM webhook_attempt WHERE delivery_id = ?"), arguments: [id]) ?? 0) + 1
            try db.cached("""
                INSERT INTO webhook_attempt (delivery_id, number, at, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?)
                """).execute(arguments: [id, number, Millis.of(attempt.at), attempt.statusCode, attempt.error, attempt.durationMs])
            try db.cached("UPDATE webhook_delivery SET status = ?, next_attempt_at = ? WHERE id = ?")
                .execute(arguments: [status.rawValue, nextAttemptAt.map(Millis.of), id])
            if db.changesCount == 0 { throw StoreError.notFound("delivery \(id)") }
        }
    }

    public func deliveries(executionID: Int64) async throws -> [WebhookDelivery] {
        try await read { db in
            try String.fetchAll(db.cached("SELECT id FROM webhook_delivery WHERE execution_id = ? ORDER BY created_at, id"),
                                arguments: [executionID]).compactMap { try Self.fetchDelivery(db, id: $0) }
        }
    }

    public func nextDeliveryDue() async throws -> Date? {
        try await read { db in
            try Int64.fetchOne(db.cached("SELECT MIN(next_attempt_at) FROM webhook_delivery WHERE status = 'pending'")).map(Millis.date)
        }
    }

    static func fetchDelivery(_ db: Database, id: String) throws -> WebhookDelivery? {
        guard let row = try Row.fetchOne(db.cached("""
            SELECT id, execution_id, tenant, url, event, status, created_at, next_attempt_at FROM webhook_delivery WHERE id = ?
            """), arguments: [id]) else { return nil }
        let next: Int64? = row[7]
        var delivery = WebhookDelivery(id: row[0], executionID: row[1], tenant: Records.tenant(row[2]), url: row[3], event: row[4],
                                       status: WebhookDeliveryStatus(rawValue: row[5]) ?? .pending, createdAt: Millis.date(row[6]),
                                       nextAttemptAt: next.map(Millis.date))
        delivery.attempts = try Row.fetchAll(db.cached("""
            SELECT at, status_code, error, duration_ms FROM webhook_attempt WHERE delivery_id = ? ORDER BY number
            """), arguments: [id]).map { WebhookAttempt(at: Millis.date($0[0]), statusCode: $0[1], error: $0[2], durationMs: $0[3]) }
        return delivery
    }

    /// Queues the deliveries an execution's end calls for (its callback's `finished`), in the
    /// caller's transaction: due at `now`.
    static func queueDeliveries(_ db: Database, executionID: Int64, now: Int64) throws {
        guard let row = try Row.fetchOne(db.cached("SELECT callback, tenant FROM execution WHERE id = ?"), arguments: [executionID]),
              let text: String = row[0],
              let callback = JSONText.decode(WebhookCallback?.self, text, empty: nil),
              callback.events.contains("finished") else { return }
        try db.cached("""
            INSERT INTO webhook_delivery (id, execution_id, tenant, url, event, status, created_at, next_attempt_at)
            VALUES (?, ?, ?, ?, 'finished', 'pending', ?, ?)
            """).execute(arguments: [UUID().uuidString.lowercased(), executionID, row[1] as String, callback.url, now, now])
    }
}
