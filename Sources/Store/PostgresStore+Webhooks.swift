import Domain
import Foundation
import PostgresNIO

// Webhooks on PostgreSQL, as SQLite's: the tenants' secrets (sealed), the delivery queue
// (queued with an execution's end, claimed with a lease by one node at a time — FOR UPDATE
// SKIP LOCKED —, attempts recorded) and an execution's deliveries.

extension PostgresStore {
    public func webhookSecret(tenant: String) async throws -> (sealed: String, createdAt: Date)? {
        var q = SQL("SELECT sealed, created_at FROM webhook_secret WHERE tenant = ")
        q.append(q.bind(tenant))
        guard let row = try await rows(q.query).first else { return nil }
        let (sealed, created) = try row.decode((String, Int64).self)
        return (sealed: sealed, createdAt: Millis.date(created))
    }

    public func setWebhookSecret(tenant: String, sealed: String, now: Date) async throws {
        var q = SQL()
        q.append("""
            INSERT INTO webhook_secret (tenant, sealed, created_at) VALUES (\(q.bind(tenant)), \(q.bind(sealed)), \(q.bind(Millis.of(now))))
            ON CONFLICT (tenant) DO UPDATE SET sealed = excluded.sealed, created_at = excluded.created_at
            """)
        try await rows(q.query)
    }

    public func claimDueDeliveries(now: Date, leaseUntil: Date, limit: Int) async throws -> [WebhookDelivery] {
        let logger = self.logger
        var q = SQL()
        q.append("""
            WITH due AS (
              SELECT id, next_attempt_at AS was FROM webhook_delivery
              WHERE status = 'pending' AND next_attempt_at <= \(q.bind(Millis.of(now)))
              ORDER BY next_attempt_at LIMIT \(q.bind(Int64(max(1, limit)))) FOR UPDATE SKIP LOCKED)
            UPDATE webhook_delivery d SET next_attempt_at = \(q.bind(Millis.of(leaseUntil)))
            FROM due WHERE d.id = due.id RETURNING d.id, due.was
            """)
        let query = q.query
        return try await transaction { connection in
            let ids = try await connection.all(query, logger).map { try $0.decode((String, Int64).self) }
                .sorted { ($0.1, $0.0) < ($1.1, $1.0) }.map(\.0)
            var claimed: [WebhookDelivery] = []
            for id in ids {
                if let delivery = try await Self.fetchDelivery(connection, id: id, logger) { claimed.append(delivery) }
            }
            return claimed
        }
    }

    public func recordDeliveryAttempt(id: String, _ attempt: WebhookAttempt, status: WebhookDeliveryStatus,
                                      nextAttemptAt: Date?) async throws {
        let logger = self.logger
        try await transaction { connection in
            var update = SQL()
            update.append("""
                UPDATE webhook_delivery SET status = \(update.bind(status.rawValue)),
                  next_attempt_at = \(update.bind(nextAttemptAt.map(Millis.of)))
                WHERE id = \(update.bind(id)) RETURNING id
                """)
            // The row lock taken here orders two attempts of one delivery: their numbers differ.
            guard try await connection.changed(update.query, logger) == 1 else { throw StoreError.notFound("delivery \(id)") }
            var q = SQL()
            let delivery = q.bind(id)
            q.append("""
                INSERT INTO webhook_attempt (delivery_id, number, at, status_code, error, duration_ms)
                SELECT \(delivery), COALESCE(MAX(number), 0) + 1, \(q.bind(Millis.of(attempt.at))),
                       \(q.bind(attempt.statusCode.map(Int64.init))), \(q.bind(attempt.error)), \(q.bind(attempt.durationMs))
                FROM webhook_attempt WHERE delivery_id = \(delivery)
                """)
            try await connection.query(q.query, logger: logger)
        }
    }

    public func deliveries(executionID: Int64) async throws -> [WebhookDelivery] {
        let logger = self.logger
        return try await withConnection { connection in
            var q = SQL("SELECT id FROM webhook_delivery WHERE execution_id = ")
            q.append("\(q.bind(executionID)) ORDER BY created_at, id")
            var found: [WebhookDelivery] = []
            for row in try await connection.all(q.query, logger) {
                if let delivery = try await Self.fetchDelivery(connection, id: try row.decode(String.self), logger) {
                    found.append(delivery)
                }
            }
            return found
        }
    }

    public func nextDeliveryDue() async throws -> Date? {
        try await rows("SELECT MIN(next_attempt_at) FROM webhook_delivery WHERE status = 'pending'")
            .first?.decode(Int64?.self).map(Millis.date)
    }

    static func fetchDelivery(_ connection: PostgresConnection, id: String, _ logger: Logger) async throws -> WebhookDelivery? {
        var q = SQL()
        q.append("""
            SELECT id, execution_id, tenant, url, event, status, created_at, next_attempt_at FROM webhook_delivery
            WHERE id = \(q.bind(id))
            """)
        guard let row = try await connection.first(q.query, logger) else { return nil }
        let (deliveryID, executionID, tenant, url, event, status, created, next) =
            try row.decode((String, Int64, String, String, String, String, Int64, Int64?).self)
        var delivery = WebhookDelivery(id: deliveryID, executionID: executionID, tenant: Records.tenant(tenant), url: url,
                                       event: event, status: WebhookDeliveryStatus(rawValue: status) ?? .pending,
                                       createdAt: Millis.date(created), nextAttemptAt: next.map(Millis.date))
        var attempts = SQL()
        attempts.append("""
            SELECT at, status_code, error, duration_ms FROM webhook_attempt WHERE delivery_id = \(attempts.bind(id)) ORDER BY number
            """)
        delivery.attempts = try await connection.all(attempts.query, logger).map { row in
            let (at, code, error, duration) = try row.decode((Int64, Int64?, String?, Int64).self)
            return WebhookAttempt(at: Millis.date(at), statusCode: code.map { Int($0) }, error: error, durationMs: duration)
        }
        return delivery
    }

    /// Queues the deliveries an execution's end calls for (its callback's `finished`), in the
    /// caller's transaction: due at `now` (as SQLite's `queueDeliveries`).
    static func queueDeliveries(_ connection: PostgresConnection, executionID: Int64, now: Int64, _ logger: Logger) async throws {
        var q = SQL("SELECT callback, tenant FROM execution WHERE id = ")
        q.append(q.bind(executionID))
        guard let row = try await connection.first(q.query, logger) else { return }
        let (text, tenant) = try row.decode((String?, String).self)
        guard let text, let callback = JSONText.decode(WebhookCallback?.self, text, empty: nil),
              callback.events.contains("finished") else { return }
        var insert = SQL()
        insert.append("""
            INSERT INTO webhook_delivery (id, execution_id, tenant, url, event, status, created_at, next_attempt_at)
            VALUES (\(insert.bind(UUID().uuidString.lowercased())), \(insert.bind(executionID)), \(insert.bind(tenant)),
                    \(insert.bind(callback.url)), 'finished', 'pending', \(insert.bind(now)), \(insert.bind(now)))
            """)
        try await connection.query(insert.query, logger: logger)
    }
}
