import Domain
@testable import Engine
import Foundation
import Sandbox
import Store
import Testing

/// The scheduler with a fixed clock (`fireDueSlots(now:)`): an engine that is never started,
/// so the executions it queues stay PENDING for the test to read.
@Suite("Scheduler", .enabled(if: EngineFixture.canRun))
struct SchedulerTests {
    /// 2026-03-28T12:00:00Z, a Saturday: Paris springs forward the next night.
    static let t0 = Date(timeIntervalSince1970: 1_774_699_200)

    static func date(_ text: String) -> Date {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)!
    }

    func withEngine(_ body: (Engine, SQLiteStore) async throws -> Void) async throws {
        let path = EngineFixture.temporaryPath()
        defer { EngineFixture.remove(path) }
        var configuration = EngineConfiguration()
        configuration.logger.logLevel = .warning
        configuration.runsSchedules = false
        let store = try SQLiteStore(path: path)
        let engine = Engine(store: store, sandbox: EngineFixture.sandbox, policies: EngineFixture.policies, configuration: configuration)
        try await body(engine, store)
    }

    func scheduled(_ store: SQLiteStore, cron: String, zone: String = "Europe/Paris", overlap: ScheduleOverlap = .skip,
                   catchUp: ScheduleCatchUp = .none, next: Date) async throws -> Job {
        var new = NewJob(name: "cron-\(UUID().uuidString.prefix(8))", scriptType: .bash, scriptContent: "true")
        new.schedule = JobSchedule(cron: cron, timezone: zone, overlap: overlap, catchUp: catchUp, nextRunAt: next)
        return try await store.createJob(new)
    }

    @Test("A due slot fires once, with trigger schedule and its slot; the schedule moves to the next slot")
    func firesOnce() async throws {
        try await withEngine { engine, store in
            let slot = Self.date("2026-03-28T12:00:00Z")
            let job = try await scheduled(store, cron: "*/15 * * * *", next: slot)
            #expect(try await engine.fireDueSlots(now: slot - 1).isEmpty, "not due a second early")
            let fired = try await engine.fireDueSlots(now: slot + 2)
            guard case .queued(let execution)? = fired.first?.result, fired.count == 1 else {
                Issue.record("expected one queued slot, got \(fired)")
                return
            }
            #expect(execution.trigger == .schedule && execution.scheduledFor == slot && execution.jobID == job.id)
            #expect(try await store.job(id: job.id)?.schedule?.nextRunAt == Self.date("2026-03-28T12:15:00Z"))
            #expect(try await engine.fireDueSlots(now: slot + 3).isEmpty, "the slot does not fire again")
            #expect(try await store.executions(ExecutionQuery(jobID: job.id)).executions.count == 1)
        }
    }

    @Test("catch_up none: slots missed during downtime are skipped, the schedule resumes at the next slot")
    func catchUpNone() async throws {
        try await withEngine { engine, store in
            let job = try await scheduled(store, cron: "*/15 * * * *", next: Self.date("2026-03-28T10:00:00Z"))
            let fired = try await engine.fireDueSlots(now: Self.date("2026-03-28T12:05:00Z"))
            #expect(fired.map { $0.result } == [.moved])
            #expect(try await store.executions(ExecutionQuery(jobID: job.id)).executions.isEmpty)
            #expect(try await store.job(id: job.id)?.schedule?.nextRunAt == Self.date("2026-03-28T12:15:00Z"))
        }
    }

    @Test("catch_up none: a slot late by less than the grace period still fires")
    func withinGrace() async throws {
        try await withEngine { engine, store in
            let slot = Self.date("2026-03-28T12:00:00Z")
            let job = try await scheduled(store, cron: "0 * * * *", next: slot)
            let fired = try await engine.fireDueSlots(now: slot + 45)
            guard case .queued(let execution)? = fired.first?.result else {
                Issue.record("a slot 45 s late did not fire: \(fired)")
                return
            }
            #expect(execution.scheduledFor == slot && execution.jobID == job.id)
        }
    }

    @Test("catch_up last: the most recent missed slot runs once, the earlier ones do not")
    func catchUpLast() async throws {
        try await withEngine { engine, store in
            let job = try await scheduled(store, cron: "*/15 * * * *", catchUp: .last, next: Self.date("2026-03-28T10:00:00Z"))
            let fired = try await engine.fireDueSlots(now: Self.date("2026-03-28T12:05:00Z"))
            guard case .queued(let execution)? = fired.first?.result, fired.count == 1 else {
                Issue.record("expected one queued slot, got \(fired)")
                return
            }
            #expect(execution.scheduledFor == Self.date("2026-03-28T12:00:00Z"))
            #expect(try await store.executions(ExecutionQuery(jobID: job.id)).executions.count == 1)
            #expect(try await store.job(id: job.id)?.schedule?.nextRunAt == Self.date("2026-03-28T12:15:00Z"))
        }
    }

    @Test("Across Paris's spring forward: 02:30 fires once at 03:00 CEST, then 02:30 CEST the next day")
    func springForward() async throws {
        try await withEngine { engine, store in
            let slot = Self.date("2026-03-29T03:00:00+02:00")
            let job = try await scheduled(store, cron: "30 2 * * *", overlap: .allow, next: slot)
            let fired = try await engine.fireDueSlots(now: slot + 1)
            guard case .queued(let execution)? = fired.first?.result else {
                Issue.record("the slot did not fire: \(fired)")
                return
            }
            #expect(execution.scheduledFor == slot)
            #expect(try await store.job(id: job.id)?.schedule?.nextRunAt == Self.date("2026-03-30T02:30:00+02:00"))
        }
    }

    @Test("overlap skip: a slot while the job's execution is pending is recorded skipped and moves on")
    func overlapSkip() async throws {
        try await withEngine { engine, store in
            let slot = Self.date("2026-03-28T12:00:00Z")
            let job = try await scheduled(store, cron: "*/15 * * * *", next: slot)
            let pending = try await engine.submit(jobID: job.id)
            let fired = try await engine.fireDueSlots(now: slot + 1)
            #expect(fired.map { $0.result } == [.skipped("execution \(pending.id) of the job was pending or running (overlap: skip)")])
            let schedule = try #require(try await store.job(id: job.id)?.schedule)
            #expect(schedule.lastSkippedAt == slot && schedule.nextRunAt == Self.date("2026-03-28T12:15:00Z"))
            #expect(pending.trigger == .api, "a run of the API says so")
        }
    }

    @Test("A job whose policy is gone: its slot is recorded skipped with the engine's reason")
    func unrunnable() async throws {
        try await withEngine { engine, store in
            let slot = Self.date("2026-03-28T12:00:00Z")
            var new = NewJob(name: "gone-\(UUID().uuidString.prefix(6))", scriptType: .bash, scriptContent: "true", policy: "no-such-policy")
            new.schedule = JobSchedule(cron: "@hourly", nextRunAt: slot)
            let job = try await store.createJob(new)
            let fired = try await engine.fireDueSlots(now: slot + 1)
            guard case .skipped(let reason)? = fired.first?.result else {
                Issue.record("expected a skip, got \(fired)")
                return
            }
            #expect(reason.contains("no-such-policy"), "\(reason)")
            #expect(try await store.job(id: job.id)?.schedule?.lastSkipReason == reason)
        }
    }
}
