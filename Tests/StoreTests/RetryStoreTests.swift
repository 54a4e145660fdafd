import Domain
import Foundation
@testable import Store
import Testing

/// Retries in the store: the retry queued with the end it follows, its not-before skipped by
/// the claim until due, the chain stopped by a cancellation.
@Suite("Store retries")
struct RetryStoreTests {
    @Test("A finish with a retry queues the next attempt in the same transaction; the claim skips it until its not-before", arguments: StoreKind.allCases)
    func retryQueuedAndDue(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob(concurrency: .forbid)
            let first = try await store.enqueue(job)
            let now = Date(timeIntervalSince1970: (Date().timeIntervalSince1970).rounded())
            _ = try await store.claim(now: now)
            var outcome = ExecutionOutcome(verdict: .exited, exitCode: 3, finishedAt: now)
            outcome.retry = RetryRequest(attempt: 2, notBefore: now + 30)
            let finished = try await store.finish(executionID: first.id, outcome)
            #expect(finished.status == .failed)
            let retry = try #require(try await store.executions(ExecutionQuery(jobID: job.id, statuses: [.pending])).executions.first)
            #expect(retry.attempt == 2 && retry.retryOf == first.id && retry.trigger == .retry)
            #expect(retry.notBefore == now + 30)
            #expect(try await store.nextNotBefore(after: now) == now + 30)
            #expect(try await store.claim(now: now + 29) == nil, "not due yet")
            let claimed = try #require(try await store.claim(now: now + 30))
            #expect(claimed.id == retry.id && claimed.status == .running)
            #expect(try await store.nextNotBefore(after: now) == nil)
        }
    }

    @Test("A retry not due does not hold back other executions; a forbid job's new run is refused while its retry waits", arguments: StoreKind.allCases)
    func othersRunMeanwhile(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob(concurrency: .forbid)
            let first = try await store.enqueue(job)
            _ = try await store.claim()
            let retry = try await store.enqueueRetry(of: first.id, RetryRequest(attempt: 2, notBefore: Date() + 3600))
            #expect(retry.attempt == 2)
            try await store.finish(first.id, .exited, exit: 1)
            await #expect(throws: StoreError.self, "the chain is pending: forbid refuses another run") { _ = try await store.enqueue(job) }
            let other = try await store.makeJob()
            let queued = try await store.enqueue(other)
            #expect(try await store.claim()?.id == queued.id)
        }
    }

    @Test("Cancelling the ended attempt whose retry is queued cancels the retry: the chain stops", arguments: StoreKind.allCases)
    func cancelStopsTheChain(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob()
            let first = try await store.enqueue(job)
            _ = try await store.claim()
            var outcome = ExecutionOutcome(verdict: .exited, exitCode: 1, finishedAt: Date())
            outcome.retry = RetryRequest(attempt: 2, notBefore: Date() + 60)
            _ = try await store.finish(executionID: first.id, outcome)
            let cancelled = try await store.cancel(executionID: first.id, now: Date())
            #expect(cancelled.retryOf == first.id && cancelled.status == .cancelled)
            await #expect(throws: StoreError.self, "nothing left to cancel") { _ = try await store.cancel(executionID: first.id, now: Date()) }
            #expect(try await store.claim(now: Date() + 120) == nil)
        }
    }
}
