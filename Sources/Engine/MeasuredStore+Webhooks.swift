import Domain
import Foundation
import Store

// The webhook store's methods through the measured store (reads pass straight through).

extension MeasuredStore {
    func webhookSecret(tenant: String) async throws -> (sealed: String, createdAt: Date)? { try await base.webhookSecret(tenant: tenant) }

    func setWebhookSecret(tenant: String, sealed: String, now: Date) async throws {
        try await base.setWebhookSecret(tenant: tenant, sealed: sealed, now: now)
    }

    func claimDueDeliveries(now: Date, leaseUntil: Date, limit: Int) async throws -> [WebhookDelivery] {
        try await base.claimDueDeliveries(now: now, leaseUntil: leaseUntil, limit: limit)
    }

    func recordDeliveryAttempt(id: String, _ attempt: WebhookAttempt, status: WebhookDeliveryStatus, nextAttemptAt: Date?) async throws {
        try await base.recordDeliveryAttempt(id: id, attempt, status: status, nextAttemptAt: nextAttemptAt)
    }

    func deliveries(executionID: Int64) async throws -> [WebhookDelivery] { try await base.deliveries(executionID: executionID) }

    func nextDeliveryDue() async throws -> Date? { try await base.nextDeliveryDue() }
}
