import Domain
@testable import Engine
import Foundation
import Store
import Testing

/// Retries run by the engine: each a new execution (`attempt`, `retry_of`) whose not-before is
/// the previous attempt's end plus the policy's delay (bounds checked, never wall-clock
/// timing), started no earlier; cancelling stops the chain.
@Suite("Engine retries", .enabled(if: EngineFixture.canRun))
struct RetryTests {
    func job(_ f: EngineFixture, _ script: String, retry: RetryPolicy) async throws -> Job {
        var new = NewJob(name: "flaky-\(UUID().uuidString.prefix(8))", scriptType: .bash, scriptContent: script)
        new.retry = retry
        return try await f.store.createJob(new)
    }

    /// The chain of executions of a job, by attempt.
    func chain(_ f: EngineFixture, _ job: Job) async throws -> [Execution] {
        try await f.store.executions(ExecutionQuery(jobID: job.id)).executions.sorted { $0.attempt < $1.attempt }
    }

    func waitChain(_ f: EngineFixture, _ job: Job, final count: Int) async throws -> [Execution] {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let all = try await chain(f, job)
            if all.count == count, all.allSatisfy(\.status.isFinal) { return all }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw EngineFixture.WaitError(what: "the chain of job \(job.id) did not reach \(count) final attempts: \(try await chain(f, job).map { ($0.attempt, $0.status) })")
    }

    @Test("A failing job is retried up to max_attempts; each attempt's not-before is the previous end plus the doubled delay")
    func delaysAndChain() async throws {
        try await EngineFixture.with { f in
            let policy = RetryPolicy(maxAttempts: 3, initialDelayMs: 300, maxDelayMs: 10_000, multiplier: 2, jitter: false)
            let job = try await job(f, "exit 3", retry: policy)
            let first = try await f.engine.submit(jobID: job.id)
            let all = try await waitChain(f, job, final: 3)
            #expect(all.map(\.attempt) == [1, 2, 3])
            #expect(all.map(\.status) == [.failed, .failed, .failed])
            #expect(all[0].id == first.id && all[0].retryOf == nil && all[0].trigger == .api)
            #expect(all[1].retryOf == all[0].id && all[2].retryOf == all[1].id)
            #expect(all[1].trigger == .retry && all[2].trigger == .retry)
            for (previous, next, delay) in [(all[0], all[1], 300.0), (all[1], all[2], 600.0)] {
                let finished = try #require(previous.finishedAt), notBefore = try #require(next.notBefore)
                let gap = (notBefore.timeIntervalSince(finished) * 1000).rounded()
                #expect(gap == delay, "attempt \(next.attempt): not-before \(gap) ms after the previous end, expected \(delay)")
                let started = try #require(next.startedAt)
                #expect(started >= notBefore, "attempt \(next.attempt) started before its not-before")
            }
        }
    }

    @Test("With jitter each delay stays within its bounds (the upper half of the doubled delay)")
    func jitterBounds() async throws {
        try await EngineFixture.with { f in
            let policy = RetryPolicy(maxAttempts: 3, initialDelayMs: 400, maxDelayMs: 10_000, multiplier: 2, jitter: true)
            let job = try await job(f, "exit 1", retry: policy)
            _ = try await f.engine.submit(jobID: job.id)
            let all = try await waitChain(f, job, final: 3)
            for (previous, next) in zip(all, all.dropFirst()) {
                let gap = Int64((try #require(next.notBefore).timeIntervalSince(try #require(previous.finishedAt)) * 1000).rounded())
                #expect(policy.delayBounds(afterAttempt: previous.attempt).contains(gap),
                        "attempt \(next.attempt): \(gap) ms, bounds \(policy.delayBounds(afterAttempt: previous.attempt))")
            }
        }
    }

    @Test("Cancelling the queued retry stops the chain; a success is never retried")
    func cancelStops() async throws {
        try await EngineFixture.with { f in
            let policy = RetryPolicy(maxAttempts: 5, initialDelayMs: 3_600_000, maxDelayMs: 3_600_000, jitter: false)
            let job = try await job(f, "exit 1", retry: policy)
            let first = try await f.engine.submit(jobID: job.id)
            _ = try await f.waitStatus(first.id, .failed)
            var retry: Execution?
            for _ in 0..<100 where retry == nil {
                retry = try await chain(f, job).first { $0.attempt == 2 }
                if retry == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            let queued = try #require(retry)
            #expect(queued.status == .pending && queued.retryOf == first.id)
            let cancelled = try await f.engine.cancel(executionID: queued.id)
            #expect(cancelled.status == .cancelled)
            #expect(try await chain(f, job).count == 2, "nothing after a cancelled retry")

            let fine = try await self.job(f, "true", retry: policy)
            let ok = try await f.engine.submit(jobID: fine.id)
            _ = try await f.waitStatus(ok.id, .success)
            #expect(try await chain(f, fine).count == 1)
        }
    }
}
