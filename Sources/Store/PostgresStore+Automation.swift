import Domain
import Foundation

// Issue 16's tables (schedules, retries, webhook deliveries) are not on PostgreSQL yet: the
// SQLite store has them (schema v13–v15). Until they are, the PostgreSQL store says so — reads
// find nothing (nothing of them can exist here), writes are refused with words — so that its
// nodes run everything else, and nothing pretends to be stored.

extension PostgresStore {
    /// Why a write of issue 16's features is refused here.
    static func automationMissing(_ what: String) -> StoreError {
        .unavailable("\(what) are not implemented on the PostgreSQL store yet (issue 16: SQLite only)")
    }

    public func scheduledJobs(tenant: String?) async throws -> [Job] { [] }
    public func dueSchedules(now: Date, limit: Int) async throws -> [Job] { [] }
    public func nextScheduledRun() async throws -> Date? { nil }
    public func fireSlot(_ firing: SlotFiring, queueLimit: Int) async throws -> SlotResult { throw Self.automationMissing("schedules") }

    public func enqueueRetry(of executionID: Int64, _ retry: RetryRequest) async throws -> Execution {
        throw Self.automationMissing("retries")
    }
    public func nextNotBefore(after now: Date) async throws -> Date? { nil }

    public func webhookSecret(tenant: String) async throws -> (sealed: String, createdAt: Date)? { nil }
    public func setWebhookSecret(tenant: String, sealed: String, now: Date) async throws { throw Self.automationMissing("webhooks") }
    public func claimDueDeliveries(now: Date, leaseUntil: Date, limit: Int) async throws -> [WebhookDelivery] { [] }
    public func recordDeliveryAttempt(id: String, _ attempt: WebhookAttempt, status: WebhookDeliveryStatus, nextAttemptAt: Date?) async throws {
        throw Self.automationMissing("webhooks")
    }
    public func deliveries(executionID: Int64) async throws -> [WebhookDelivery] { [] }
    public func nextDeliveryDue() async throws -> Date? { nil }
}
