import Domain
import Foundation
import Logging
import Store

// Retries: when an attempt ends as its job's retry policy says to retry, the next attempt is
// queued in the transaction that stores the end (`ExecutionOutcome.retry`), with a durable
// not-before; the workers' ticker wakes them when the earliest becomes due.

extension Engine {
    /// The retry to queue for an attempt that ended so: its job's policy asks for one and
    /// attempts are left; nil otherwise (an ad-hoc run, a success, a cancellation, the last
    /// attempt). The delay counts from `finishedAt`.
    func retryRequest(for execution: Execution, status: ExecutionStatus, verdict: ExecutionVerdict?,
                      finishedAt: Date) async -> RetryRequest? {
        guard let jobID = execution.jobID, !execution.cancelRequested, RetryPolicy.mayRetry(status: status, verdict: verdict),
              let job = try? await store.job(id: jobID), let policy = job.retry,
              execution.attempt < policy.maxAttempts, policy.retries(status: status, verdict: verdict) else { return nil }
        let delay = policy.delay(afterAttempt: execution.attempt)
        return RetryRequest(attempt: execution.attempt + 1, notBefore: finishedAt.addingTimeInterval(Double(delay) / 1000))
    }

    /// Queues the retries of executions a crash interrupted, when their jobs' policies list
    /// `interrupted`.
    func retryInterrupted(_ interrupted: [Execution]) async {
        for execution in interrupted {
            guard let retry = await retryRequest(for: execution, status: execution.status, verdict: execution.verdict,
                                                 finishedAt: execution.finishedAt ?? Date()) else { continue }
            do {
                let queued = try await store.enqueueRetry(of: execution.id, retry)
                var details = Self.metadata(queued)
                details["retry_of"] = "\(execution.id)"
                configuration.logger.info("retry queued for an interrupted execution", metadata: details)
            } catch {
                configuration.logger.warning("queueing the retry of interrupted execution \(execution.id) failed: \(error)")
            }
        }
    }

    /// How long the workers' ticker may sleep: until the earliest queued retry is due, one
    /// second at most (the periodic look for expired leases and freed queue rules).
    func tickerPause(now: Date) async -> Duration {
        guard let next = try? await store.nextNotBefore(after: now) else { return .seconds(1) }
        let wait = next.timeIntervalSince(now)
        return wait >= 1 ? .seconds(1) : .milliseconds(max(5, Int64((wait * 1000).rounded(.up))))
    }
}
