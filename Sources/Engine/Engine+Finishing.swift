import Domain
import Foundation
import Store

// Storing the end of an execution, through a full disk: with all its output, with the output
// stored while it ran, or later (the lease kept) once there is room.

extension Engine {
    /// Stores the end of an execution. When the database's disk is full: with its complete
    /// output if that fits, else with the output stored while it ran (the reason says so); when
    /// not even that fits, tries again every second, keeping the lease, until it fits or the
    /// engine stops (the next start then ends the execution as interrupted). When the database
    /// cannot be reached (a PostgreSQL server down or unreachable): the end waits in memory
    /// (one per worker at most: the worker takes no new work meanwhile, so it is bounded by
    /// `workers` and the output caps), said once in the log, and is stored when the database
    /// answers again. With `claimingNext`, the worker's next execution is claimed in the same
    /// transaction (unless the engine is draining). Returns what was stored and the next
    /// execution, or nil.
    func storeEnd(_ outcome: ExecutionOutcome, of execution: Execution,
                  claimingNext: Bool = false) async -> (stored: ExecutionOutcome, next: Execution?)? {
        let about = Self.metadata(execution)
        var outcome = outcome
        outcome.weakerIsolation = weakerIsolation
        var lean = outcome
        lean.keepsStoredOutput = true
        let note = "the database's disk was full when this execution ended: only the output stored while it ran was kept"
        lean.reason = [outcome.reason, note].compactMap { $0 }.joined(separator: "; ")
        var warned = false
        var unreachable = false
        var retryNow = false
        while true {
            attempts: for attempt in [outcome, lean] {
                do {
                    let claim = claimingNext && !state.withLock({ $0.draining })
                        ? ClaimRequest(worker: configuration.workerName, leaseUntil: Date() + configuration.leaseDuration.seconds,
                                       now: Date())
                        : nil
                    let next = try await store.finish(executionID: execution.id, attempt, thenClaim: claim).next
                    if unreachable {
                        configuration.logger.notice("the database answers again: the end of this execution was stored", metadata: about)
                    }
                    return (attempt, next)
                } catch StoreError.diskFull {
                    continue
                } catch StoreError.unavailable(let why) {
                    if state.withLock({ $0.interrupting }) {
                        configuration.logger.warning("""
                            stopping with the end of this execution unstored (the database is unavailable: \(why)); \
                            it ends as interrupted
                            """, metadata: about)
                        return nil
                    }
                    if !unreachable {
                        unreachable = true
                        configuration.logger.warning("""
                            the database is unavailable (\(why)): the end of this execution is kept in memory and stored \
                            once it answers
                            """, metadata: about)
                    }
                    try? await Task.sleep(for: .seconds(1))
                    retryNow = true
                    break attempts
                } catch {
                    configuration.logger.warning("storing the end of the execution failed: \(error)", metadata: about)
                    return nil
                }
            }
            if retryNow {
                retryNow = false
                continue
            }
            if !warned {
                warned = true
                configuration.logger.warning(
                    "the database's disk is full: the end of this execution is kept in memory and stored once there is room",
                    metadata: about)
            }
            if state.withLock({ $0.interrupting }) {
                configuration.logger.warning(
                    "stopping with the end of this execution unstored (the disk is full); the next start ends it as interrupted",
                    metadata: about)
                return nil
            }
            try? await store.renewLease(executionID: execution.id, worker: configuration.workerName,
                                        until: Date() + configuration.leaseDuration.seconds)
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
