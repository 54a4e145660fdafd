import Domain
import Foundation
import Logging
import Store

// The scheduler: fires each due slot of every enabled schedule once. The store is the only
// record — a slot is claimed with its unique key (job, slot time) in the transaction that
// queues its execution and moves the schedule on — so a restart or a kill -9 at any point, or
// several nodes, never fire a slot twice; the loop here only decides when to look.

extension Engine {
    /// Looks for due slots, then sleeps until the earliest next slot (one second at most, so
    /// schedules set or edited meanwhile are seen), until the engine drains.
    func runSchedules() async {
        while !Task.isCancelled, !state.withLock({ $0.draining }) {
            var pause: Duration = .seconds(1)
            do {
                try await fireDueSlots(now: Date())
                if let next = try await store.nextScheduledRun() {
                    let wait = next.timeIntervalSinceNow
                    if wait < 1 { pause = .milliseconds(max(20, Int64(wait * 1000))) }
                }
            } catch {
                configuration.logger.warning("the scheduler could not read or fire schedules: \(error)")
            }
            try? await Task.sleep(for: pause)
        }
    }

    /// Fires every slot due at `now` (in batches of 100 schedules); returns what became of them.
    @discardableResult
    public func fireDueSlots(now: Date) async throws -> [(jobID: Int64, result: SlotResult)] {
        var results: [(Int64, SlotResult)] = []
        while true {
            let due = try await store.dueSchedules(now: now, limit: 100)
            var progressed = false
            for job in due {
                guard let firing = await slotFiring(job, now: now) else { continue }
                let result = try await store.fireSlot(firing, queueLimit: configuration.queueLimit)
                results.append((job.id, result))
                report(job, firing, result)
                if case .queued = result { wakeWorkers() }
                progressed = true
            }
            if due.count < 100 || !progressed { return results }
        }
    }

    /// What to do with a due schedule at `now`: the slot to fire (the latest due one when it is
    /// within the grace period or `catch_up` is `last`; none when every due slot was missed),
    /// the next slot after `now`, and the execution to queue.
    func slotFiring(_ job: Job, now: Date) async -> SlotFiring? {
        guard let schedule = job.schedule, let due = schedule.nextRunAt else { return nil }
        guard let (expression, zone) = try? schedule.parsed() else {
            // Stored schedules were validated when set; a zone gone from the system stops it.
            configuration.logger.warning("job \(job.id)'s schedule cannot be read any more (\(schedule.cron), \(schedule.timezone)); it is stopped")
            return SlotFiring(jobID: job.id, expectedNextRunAt: due, slot: nil, nextRunAt: nil, execution: nil, overlap: schedule.overlap)
        }
        // The latest due slot; slots are looked for within a year before `now` at most.
        let floor = max(due, now.addingTimeInterval(-366 * 86400))
        let latest = expression.lastRun(atOrBefore: now, notBefore: floor, in: zone) ?? due
        let next = expression.nextRun(after: max(now, latest), in: zone)
        let late = now.timeIntervalSince(latest)
        let fires = schedule.catchUp == .last || late <= configuration.scheduleGrace.seconds
        guard fires else {
            return SlotFiring(jobID: job.id, expectedNextRunAt: due, slot: nil, nextRunAt: next, execution: nil, overlap: schedule.overlap)
        }
        var options = RunOptions(submittedBy: job.createdBy)
        options.trigger = .schedule
        do {
            var new = try newExecution(jobID: job.id, scriptType: job.scriptType, script: job.scriptContent, policyName: job.policy,
                                       jobLimits: job.limits, concurrency: schedule.overlap.concurrency, arguments: job.arguments,
                                       environment: job.environment, secretEnvironment: job.secretEnvironment, options: options)
            new.outputs = job.outputs
            new.scheduledFor = latest
            new.callback = job.callback
            if !job.files.isEmpty {
                let files: [InputFile]
                do { files = try await store.jobFiles(id: job.id) } catch { throw Self.wrap(error) }
                new.files = try checkedFiles(files)
            }
            return SlotFiring(jobID: job.id, expectedNextRunAt: due, slot: latest, nextRunAt: next, execution: new,
                              overlap: schedule.overlap)
        } catch let error as EngineError {
            return SlotFiring(jobID: job.id, expectedNextRunAt: due, slot: latest, nextRunAt: next, execution: nil,
                              skipReason: "the job could not be run: \(error.description)", overlap: schedule.overlap)
        } catch {
            return SlotFiring(jobID: job.id, expectedNextRunAt: due, slot: latest, nextRunAt: next, execution: nil,
                              skipReason: "the job could not be run: \(error)", overlap: schedule.overlap)
        }
    }

    /// A log line for each slot.
    func report(_ job: Job, _ firing: SlotFiring, _ result: SlotResult) {
        var details: Logger.Metadata = ["job_id": "\(job.id)"]
        if let slot = firing.slot { details["slot"] = "\(Timestamp.rfc3339(slot))" }
        switch result {
        case .queued(let execution):
            details["execution_id"] = "\(execution.id)"
            configuration.logger.info("schedule slot fired", metadata: details)
        case .skipped(let reason):
            configuration.logger.info("schedule slot skipped: \(reason)", metadata: details)
        case .moved:
            configuration.logger.info("missed schedule slots skipped (catch_up: none)", metadata: details)
        case .alreadyClaimed, .scheduleChanged:
            configuration.logger.debug("schedule slot handled elsewhere", metadata: details)
        }
    }
}

extension NewExecution {
    /// The same execution, started by `trigger`.
    func triggered(by trigger: ExecutionTrigger) -> NewExecution {
        var copy = self
        copy.trigger = trigger
        return copy
    }
}
