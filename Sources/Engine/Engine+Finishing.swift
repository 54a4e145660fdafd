import Domain
import Foundation
import Store

// Storing the end of an execution, through a full disk: with all its output, with the output
// stored while it ran, or later (the lease kept) once there is room.

extension Engine {
    /// Stores the end of an execution. When the database's disk is full: with its complete
    /// output if that fits, else with the output stored while it ran (the reason says so); when
    /// not even that fits, tries again every second, keeping the lease, until it fits or the
    /// engine stops (the next start then ends the execution as interrupted). Returns what was
    /// stored, or nil.
    func storeEnd(_ outcome: ExecutionOutcome, of execution: Execution) async -> ExecutionOutcome? {
        let about = Self.metadata(execution)
        var outcome = outcome
        outcome.weakerIsolation = weakerIsolation
        var lean = outcome
        lean.keepsStoredOutput = true
        let note = "the database's disk was full when this execution ended: only the output stored while it ran was kept"
        lean.reason = [outcome.reason, note].compactMap { $0 }.joined(separator: "; ")
        var warned = false
        while true {
            for attempt in [outcome, lean] {
                do {
                    _ = try await store.finish(executionID: execution.id, attempt)
                    return attempt
                } catch StoreError.diskFull {
                    continue
                } catch {
                    configuration.logger.warning("storing the end of the execution failed: \(error)", metadata: about)
                    return nil
                }
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
