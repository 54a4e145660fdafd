import Domain
import Foundation
@testable import Store
import Testing

/// Schedules in the store: set, changed, removed with the job; due ones found; each slot fired
/// once (the unique key of job and slot time), overlap skips recorded, the next slot guarded.
@Suite("Store schedules")
struct ScheduleTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func scheduledJob(_ store: any TestStore, overlap: ScheduleOverlap = .skip, next: Date = t0) async throws -> Job {
        var new = NewJob(name: "cron-\(UUID().uuidString.prefix(8))", scriptType: .bash, scriptContent: "true", concurrency: .forbid)
        new.schedule = JobSchedule(cron: "*/5 * * * *", timezone: "Europe/Paris", overlap: overlap, nextRunAt: next)
        return try await store.createJob(new)
    }

    func firing(_ job: Job, slot: Date?, expected: Date = t0, next: Date? = t0 + 300, overlap: ScheduleOverlap = .skip) -> SlotFiring {
        var new = makeNewExecution(job)
        new.concurrency = overlap.concurrency
        new.trigger = .schedule
        new.scheduledFor = slot
        return SlotFiring(jobID: job.id, expectedNextRunAt: expected, slot: slot, nextRunAt: next, execution: new, overlap: overlap)
    }

    @Test("A schedule is stored with its job, changed, disabled and removed; the job's row reads it back", arguments: StoreKind.allCases)
    func roundTrip(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await scheduledJob(store)
            #expect(job.schedule == JobSchedule(cron: "*/5 * * * *", timezone: "Europe/Paris", overlap: .skip, nextRunAt: Self.t0))
            var changed = try #require(job.schedule)
            changed.enabled = false
            let disabled = try await store.updateJob(id: job.id, JobPatch(schedule: .some(changed)))
            #expect(disabled.schedule?.enabled == false)
            #expect(disabled.schedule?.nextRunAt == nil, "a disabled schedule has no next slot")
            #expect(try await store.nextScheduledRun() == nil)
            let unchanged = try await store.updateJob(id: job.id, JobPatch(name: "renamed"))
            #expect(unchanged.schedule?.cron == "*/5 * * * *", "a patch without schedule keeps it")
            let removed = try await store.updateJob(id: job.id, JobPatch(schedule: .some(nil)))
            #expect(removed.schedule == nil)
            #expect(try await store.scheduledJobs(tenant: nil).isEmpty)
        }
    }

    @Test("Due schedules and the scheduled list come by next run; tenants are kept apart", arguments: StoreKind.allCases)
    func dueAndListed(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let late = try await scheduledJob(store, next: Self.t0 + 600)
            let early = try await scheduledJob(store, next: Self.t0)
            var other = NewJob(name: "theirs", scriptType: .bash, scriptContent: "true", tenant: "other")
            other.schedule = JobSchedule(cron: "@daily", nextRunAt: Self.t0 + 60)
            let theirs = try await store.createJob(other)
            #expect(try await store.scheduledJobs(tenant: nil).map(\.id) == [early.id, theirs.id, late.id])
            #expect(try await store.scheduledJobs(tenant: "other").map(\.id) == [theirs.id])
            #expect(try await store.dueSchedules(now: Self.t0 + 60, limit: 10).map(\.id) == [early.id, theirs.id])
            #expect(try await store.nextScheduledRun() == Self.t0)
        }
    }

    @Test("A slot fires once: its execution is queued with trigger and slot, and a second claim of it does nothing", arguments: StoreKind.allCases)
    func firesOnce(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await scheduledJob(store)
            guard case .queued(let execution) = try await store.fireSlot(firing(job, slot: Self.t0), queueLimit: 100) else {
                Issue.record("the slot did not queue an execution")
                return
            }
            #expect(execution.trigger == .schedule)
            #expect(execution.scheduledFor == Self.t0)
            #expect(try await store.job(id: job.id)?.schedule?.nextRunAt == Self.t0 + 300)
            #expect(try await store.job(id: job.id)?.schedule?.lastSlotAt == Self.t0)
            // The same view of the schedule again (a second node, a retry after a crash): nothing.
            #expect(try await store.fireSlot(firing(job, slot: Self.t0), queueLimit: 100) == .scheduleChanged)
            // Even with the schedule's next slot put back on it (an edit), the slot is claimed already.
            var schedule = try #require(try await store.job(id: job.id)?.schedule)
            schedule.nextRunAt = Self.t0
            _ = try await store.updateJob(id: job.id, JobPatch(schedule: .some(schedule)))
            #expect(try await store.fireSlot(firing(job, slot: Self.t0), queueLimit: 100) == .alreadyClaimed)
            #expect(try await store.executionCount() == 1)
        }
    }

    @Test("Many concurrent firings of one slot queue one execution", arguments: StoreKind.allCases)
    func concurrentFirings(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await scheduledJob(store, overlap: .allow)
            let results = try await withThrowingTaskGroup(of: SlotResult.self) { group in
                for _ in 0..<16 { group.addTask { try await store.fireSlot(firing(job, slot: Self.t0, overlap: .allow), queueLimit: 100) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.filter { if case .queued = $0 { return true } else { return false } }.count == 1)
            #expect(try await store.executionCount() == 1)
        }
    }

    @Test("overlap skip: a slot while a run is pending is recorded skipped with the reason; queue and allow queue it", arguments: StoreKind.allCases)
    func overlap(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await scheduledJob(store)
            let running = try await store.enqueue(job)
            let result = try await store.fireSlot(firing(job, slot: Self.t0), queueLimit: 100)
            #expect(result == .skipped("execution \(running.id) of the job was pending or running (overlap: skip)"))
            let after = try #require(try await store.job(id: job.id)?.schedule)
            #expect(after.lastSkippedAt == Self.t0)
            #expect(after.lastSkipReason?.contains("overlap: skip") == true)
            #expect(after.nextRunAt == Self.t0 + 300, "the schedule moves on after a skip")

            let queued = try await scheduledJob(store, overlap: .queue)
            _ = try await store.enqueue(queued)
            guard case .queued(let execution) = try await store.fireSlot(firing(queued, slot: Self.t0, overlap: .queue), queueLimit: 100) else {
                Issue.record("overlap queue did not queue")
                return
            }
            #expect(execution.status == .pending)
        }
    }

    @Test("A full queue skips the slot with the store's words; missed slots move the schedule without a run", arguments: StoreKind.allCases)
    func refusedAndMissed(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await scheduledJob(store, overlap: .allow)
            let result = try await store.fireSlot(firing(job, slot: Self.t0, overlap: .allow), queueLimit: 0)
            #expect(result == .skipped(StoreError.queueFull(limit: 0).description))
            let other = try await scheduledJob(store)
            #expect(try await store.fireSlot(firing(other, slot: nil, next: Self.t0 + 900), queueLimit: 100) == .moved)
            #expect(try await store.job(id: other.id)?.schedule?.nextRunAt == Self.t0 + 900)
            #expect(try await store.executionCount() == 0)
        }
    }

    @Test("Deleting a job deletes its schedule and slots", arguments: StoreKind.allCases)
    func deletedWithTheJob(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await scheduledJob(store)
            _ = try await store.fireSlot(firing(job, slot: Self.t0), queueLimit: 100)
            let execution = try #require(try await store.executions(ExecutionQuery(jobID: job.id)).executions.first)
            _ = try await store.claim()
            try await store.finish(execution.id)
            try await store.deleteJob(id: job.id)
            let slots = try await store.scheduleSlotCount()
            #expect(slots == 0)
        }
    }
}
