import Domain
import Foundation

/// Persistence of webhook deliveries and the tenants' webhook secrets: the durable delivery
/// queue. A delivery is queued in the transaction that stores its execution's end (the
/// execution's `callback`), so no end is lost to a crash; the engine's sender claims due
/// deliveries (pushing their next attempt past a lease, so a sender that dies mid-attempt is
/// retried after it) and records each attempt. Methods throw `StoreError`.
public protocol WebhookStore: Sendable {
    /// A tenant's webhook secret (sealed) and when it was made; nil when it has none.
    func webhookSecret(tenant: String) async throws -> (sealed: String, createdAt: Date)?
    /// Sets (replaces) a tenant's webhook secret.
    func setWebhookSecret(tenant: String, sealed: String, now: Date) async throws
    /// Claims up to `limit` pending deliveries due at `now`: their next attempt moves to
    /// `leaseUntil` (an attempt still in flight then is taken again).
    func claimDueDeliveries(now: Date, leaseUntil: Date, limit: Int) async throws -> [WebhookDelivery]
    /// Records an attempt and the delivery's new state (`nextAttemptAt` nil once final).
    func recordDeliveryAttempt(id: String, _ attempt: WebhookAttempt, status: WebhookDeliveryStatus, nextAttemptAt: Date?) async throws
    /// An execution's deliveries, oldest first, with their attempts.
    func deliveries(executionID: Int64) async throws -> [WebhookDelivery]
    /// The earliest next attempt of a pending delivery (nil: none).
    func nextDeliveryDue() async throws -> Date?
}
