import Domain
import Foundation
import Logging
import Store

// The worker loop: each worker claims the next execution the store allows and runs it to its
// end; workers sleep until woken (a submission, a finished run, the periodic tick).

extension Engine {
    /// Wakes every worker to look for work.
    func wakeWorkers() {
        for wakeUp in state.withLock({ $0.wakeUps }) { wakeUp.yield() }
    }

    /// One worker: claims and runs executions until the engine drains; sleeps until woken. The
    /// next execution usually comes claimed with the previous one's end (one transaction); one
    /// claimed so is run even when draining began meanwhile, as any claimed execution is.
    func work(index: Int, wakeUps: AsyncStream<Void>) async {
        var wakeUp = wakeUps.makeAsyncIterator()
        var next: Execution?
        while next != nil || !state.withLock({ $0.draining }) {
            let claimed: Execution?
            if let taken = next {
                claimed = taken
                next = nil
            } else {
                do {
                    claimed = try await store.claimNext(worker: configuration.workerName,
                                                        leaseUntil: Date() + configuration.leaseDuration.seconds, now: Date())
                    if state.withLock({ s in defer { s.claimsFailing = false }; return s.claimsFailing }) {
                        configuration.logger.notice("claiming works again")
                    }
                } catch {
                    // Said once per outage (every worker retries at each wake-up, at least every second).
                    if state.withLock({ s in defer { s.claimsFailing = true }; return !s.claimsFailing }) {
                        configuration.logger.warning("claiming failed: \(error); retrying every second", metadata: ["worker": "\(index)"])
                    }
                    claimed = nil
                }
            }
            if let claimed {
                metrics.workersBusy.increment()
                next = await run(claimed)
                metrics.workersBusy.decrement()
            } else if await wakeUp.next() == nil {
                return
            }
        }
    }

    /// Runs one claimed execution to its end and stores the outcome; returns the worker's next
    /// execution when one was claimed with it.
    func run(_ execution: Execution) async -> Execution? {
        let (flushRequests, requestFlush) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let live = LiveOutput(executionID: execution.id, caps: outputCaps(of: execution),
                              flushBytes: configuration.outputFlushBytes, onBacklog: { requestFlush.yield() })
        state.withLock { $0.live[execution.id] = live }
        defer {
            state.withLock { s in
                _ = s.live.removeValue(forKey: execution.id)
                s.diskFullWarned.remove(execution.id)
            }
            live.end()
        }
        var outcome = await runInSandbox(execution, live: live, flushRequests: flushRequests, requestFlush: requestFlush)
        // What the store does not have yet goes with the outcome.
        if let rest = live.unstored() {
            (outcome.stdout, outcome.stderr) = (rest.stdout, rest.stderr)
            (outcome.stdoutOffset, outcome.stderrOffset) = (rest.from.stdout, rest.from.stderr)
        } else {
            let captured = live.captured
            (outcome.stdoutOffset, outcome.stderrOffset) = (captured.stdout, captured.stderr)
        }
        outcome.retry = await retryRequest(for: execution, status: outcome.status, verdict: outcome.verdict,
                                           finishedAt: outcome.finishedAt)
        guard let (stored, next) = await storeEnd(outcome, of: execution, claimingNext: true) else { return nil }
        if let retry = stored.retry {
            var details = Self.metadata(execution)
            details["attempt"] = "\(retry.attempt)"
            details["not_before"] = "\(Timestamp.rfc3339(retry.notBefore))"
            configuration.logger.info("retry queued", metadata: details)
        }
        var details = Self.metadata(execution)
        details["status"] = "\(stored.status.rawValue)"
        details["verdict"] = "\(stored.verdict.rawValue)"
        if let code = stored.exitCode { details["exit_code"] = "\(code)" }
        details["wall_ms"] = "\(stored.usage.wallMs)"
        configuration.logger.info("execution finished", metadata: details)
        return next
    }
}
