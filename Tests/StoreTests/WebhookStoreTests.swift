import Domain
import Foundation
@testable import Store
import Testing

/// The delivery queue: a delivery queued with an execution's end (and only with a callback),
/// claimed under a lease, its attempts recorded in order.
@Suite("Store webhooks")
struct WebhookStoreTests {
    @Test("An end queues a delivery in its transaction; a claim leases it; attempts are recorded; a final one leaves the queue", arguments: StoreKind.allCases)
    func queueAndAttempts(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob()
            var new = makeNewExecution(job)
            new.callback = WebhookCallback(url: "https://example.com/hook")
            let execution = try await store.enqueue(new, queueLimit: 10)
            let plain = try await store.enqueue(job)
            _ = try await store.claim()
            _ = try await store.claim()
            let end = Date(timeIntervalSince1970: 1_800_000_000)
            try await store.finish(execution.id, at: end)
            try await store.finish(plain.id, at: end)
            #expect(try await store.deliveries(executionID: plain.id).isEmpty, "no callback, no delivery")
            let queued = try #require(try await store.deliveries(executionID: execution.id).first)
            #expect(queued.status == .pending && queued.nextAttemptAt == end && queued.url == "https://example.com/hook")
            #expect(try await store.nextDeliveryDue() == end)

            let claimed = try await store.claimDueDeliveries(now: end, leaseUntil: end + 40, limit: 10)
            #expect(claimed.map(\.id) == [queued.id])
            #expect(try await store.claimDueDeliveries(now: end + 1, leaseUntil: end + 41, limit: 10).isEmpty, "leased")
            let failed = WebhookAttempt(at: end, statusCode: 500, error: "answered 500", durationMs: 7)
            try await store.recordDeliveryAttempt(id: queued.id, failed, status: .pending, nextAttemptAt: end + 5)
            #expect(try await store.claimDueDeliveries(now: end + 5, leaseUntil: end + 45, limit: 10).map(\.id) == [queued.id])
            let ok = WebhookAttempt(at: end + 5, statusCode: 200, error: nil, durationMs: 3)
            try await store.recordDeliveryAttempt(id: queued.id, ok, status: .delivered, nextAttemptAt: nil)
            let done = try #require(try await store.deliveries(executionID: execution.id).first)
            #expect(done.status == .delivered && done.attempts == [failed, ok] && done.nextAttemptAt == nil)
            #expect(try await store.nextDeliveryDue() == nil)
        }
    }

    @Test("A webhook secret is set, replaced and read per tenant", arguments: StoreKind.allCases)
    func secrets(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            #expect(try await store.webhookSecret(tenant: "data") == nil)
            try await store.setWebhookSecret(tenant: "data", sealed: "one", now: Date(timeIntervalSince1970: 1))
            try await store.setWebhookSecret(tenant: "data", sealed: "two", now: Date(timeIntervalSince1970: 2))
            try await store.setWebhookSecret(tenant: "web", sealed: "three", now: Date(timeIntervalSince1970: 3))
            #expect(try await store.webhookSecret(tenant: "data")?.sealed == "two")
            #expect(try await store.webhookSecret(tenant: "web")?.sealed == "three")
        }
    }
}
