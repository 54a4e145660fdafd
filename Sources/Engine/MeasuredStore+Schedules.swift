import Domain
import Foundation
import Store

// The schedule store's methods through the measured store: a fired slot's write is timed, and
// an execution it queued counts in the queue depth.

extension MeasuredStore {
    func scheduledJobs(tenant: String?) async throws -> [Job] { try await base.scheduledJobs(tenant: tenant) }

    func dueSchedules(now: Date, limit: Int) async throws -> [Job] { try await base.dueSchedules(now: now, limit: limit) }

    func nextScheduledRun() async throws -> Date? { try await base.nextScheduledRun() }

    func fireSlot(_ firing: SlotFiring, queueLimit: Int) async throws -> SlotResult {
        let result = try await metrics.timed(.fireSlot) { try await base.fireSlot(firing, queueLimit: queueLimit) }
        if case .queued = result { metrics.queueDepth.increment() }
        return result
    }
}
