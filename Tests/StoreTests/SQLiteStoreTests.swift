import Domain
import Foundation
import GRDB
@testable import Store
import Testing

/// The SQLite store on temporary files: schema, guards, rules, queue, leases, paging, pruning.
@Suite("SQLiteStore")
struct SQLiteStoreTests {
    /// A store on a fresh file, removed afterwards.
    static func withStore(_ body: (SQLiteStore) async throws -> Void) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("confine-store-\(UUID().uuidString)/db.sqlite").path
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path) }
        try await body(try SQLiteStore(path: path))
    }

    static func new(_ job: Job, priority: Int = 0, at date: Date = Date()) -> NewExecution {
        NewExecution(jobID: job.id, scriptType: job.scriptType, scriptSnapshot: job.scriptContent, policyName: job.policy,
                     policySnapshot: "policy of \(job.name)", concurrency: job.concurrency, priority: priority, createdAt: date)
    }

    static func job(_ store: SQLiteStore, _ name: String = "j-\(UUID().uuidString.prefix(8))",
                    concurrency: ConcurrencyRule = .allow) async throws -> Job {
        try await store.createJob(NewJob(name: name, scriptType: .bash, scriptContent: "echo \(name)", concurrency: concurrency))
    }

    static func outcome(_ verdict: ExecutionVerdict = .exited, exit: Int32? = 0) -> ExecutionOutcome {
        ExecutionOutcome(verdict: verdict, exitCode: exit, stdout: Data("out".utf8), stdoutBytes: 3, finishedAt: Date())
    }

    @Test("Migrations from an empty file create every table and index; reopening migrates nothing twice")
    func migrationsFromEmpty() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("confine-migrate-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("nested/db.sqlite").path
        let store = try SQLiteStore(path: path)
        let (tables, indexes, applied) = try await store.pool.read { db in
            (try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"),
             try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name"),
             try Migrations.migrator.appliedMigrations(db))
        }
        #expect(tables.contains("job") && tables.contains("execution"))
        #expect(Set(indexes).isSuperset(of: ["execution_queue", "execution_job", "execution_lease", "execution_created"]))
        #expect(applied == Migrations.versions)
        let mode = try await store.pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
        // Every earlier version migrates to the latest (v1 is the first: a v1 file reopens as is).
        for version in Migrations.versions {
            let older = dir.appendingPathComponent("\(version).sqlite").path
            _ = try SQLiteStore(path: older, migrateUpTo: version)
            let reopened = try SQLiteStore(path: older)
            let now = try await reopened.pool.read { db in try Migrations.migrator.appliedMigrations(db) }
            #expect(now == Migrations.versions)
        }
    }

    @Test("Jobs: unique names, patches, lookup by name and type, delete cascades but not while running")
    func jobs() async throws {
        try await Self.withStore { store in
            let a = try await Self.job(store, "alpha")
            await #expect(throws: StoreError.conflict("a job named alpha already exists")) { _ = try await Self.job(store, "alpha") }
            let b = try await store.createJob(NewJob(name: "beta", scriptType: .python, scriptContent: "print(1)", arguments: ["x"], environment: ["K": "v"]))
            #expect(try await store.job(named: "beta") == b)
            #expect(try await store.jobs(scriptType: .python).map(\.id) == [b.id])
            #expect(try await store.jobs(scriptType: nil).map(\.id) == [a.id, b.id])
            let patched = try await store.updateJob(id: b.id, JobPatch(scriptContent: "print(2)", concurrency: .queue))
            #expect(patched.scriptContent == "print(2)" && patched.concurrency == .queue && patched.arguments == ["x"] && patched.environment == ["K": "v"])
            await #expect(throws: StoreError.conflict("a job named alpha already exists")) { _ = try await store.updateJob(id: b.id, JobPatch(name: "alpha")) }
            let e = try await store.enqueue(Self.new(a), queueLimit: 10)
            await #expect(throws: StoreError.self) { try await store.deleteJob(id: a.id) }
            _ = try await store.cancel(executionID: e.id, now: Date())
            try await store.deleteJob(id: a.id)
            #expect(try await store.job(id: a.id) == nil)
            #expect(try await store.execution(id: e.id) == nil, "executions go with their job")
            await #expect(throws: StoreError.notFound("job 999")) { try await store.deleteJob(id: 999) }
        }
    }

    @Test("State guards: finish only from RUNNING, never twice; cancel pending, flag running, refuse final")
    func guards() async throws {
        try await Self.withStore { store in
            let job = try await Self.job(store)
            let pending = try await store.enqueue(Self.new(job), queueLimit: 10)
            await #expect(throws: StoreError.invalidTransition(executionID: pending.id, from: .pending, to: "SUCCESS")) {
                _ = try await store.finish(executionID: pending.id, Self.outcome())
            }
            let claimed = try #require(try await store.claimNext(worker: "w", leaseUntil: Date() + 60, now: Date()))
            #expect(claimed.id == pending.id && claimed.status == .running && claimed.worker == "w")
            let done = try await store.finish(executionID: claimed.id, Self.outcome(exit: 2))
            #expect(done.status == .failed && done.exitCode == 2 && done.finishedAt != nil)
            await #expect(throws: StoreError.invalidTransition(executionID: claimed.id, from: .failed, to: "SUCCESS")) {
                _ = try await store.finish(executionID: claimed.id, Self.outcome())
            }
            await #expect(throws: StoreError.self) { _ = try await store.cancel(executionID: claimed.id, now: Date()) }
            let second = try await store.enqueue(Self.new(job), queueLimit: 10)
            let cancelled = try await store.cancel(executionID: second.id, now: Date())
            #expect(cancelled.status == .cancelled && cancelled.verdict == .cancelled)
            let third = try await store.enqueue(Self.new(job), queueLimit: 10)
            _ = try await store.claimNext(worker: "w", leaseUntil: Date() + 60, now: Date())
            let flagged = try await store.cancel(executionID: third.id, now: Date())
            #expect(flagged.status == .running)
            #expect(try await store.isCancelRequested(executionID: third.id))
        }
    }

    @Test("Concurrency rules at enqueue and claim: forbid, queue, allow")
    func concurrencyRules() async throws {
        try await Self.withStore { store in
            let forbid = try await Self.job(store, concurrency: .forbid)
            let first = try await store.enqueue(Self.new(forbid), queueLimit: 10)
            await #expect(throws: StoreError.self) { _ = try await store.enqueue(Self.new(forbid), queueLimit: 10) }
            _ = try await store.cancel(executionID: first.id, now: Date())
            _ = try await store.enqueue(Self.new(forbid), queueLimit: 10)

            let queued = try await Self.job(store, concurrency: .queue)
            let q1 = try await store.enqueue(Self.new(queued, priority: 5), queueLimit: 10)
            let q2 = try await store.enqueue(Self.new(queued, priority: 5), queueLimit: 10)
            #expect(try await store.claimNext(worker: "w", leaseUntil: Date() + 60, now: Date())?.id == q1.id)
            // q2 must wait for q1: the next claim takes the forbid job's execution instead, then nothing.
            let next = try await store.claimNext(worker: "w", leaseUntil: Date() + 60, now: Date())
            #expect(next?.jobID == forbid.id)
            #expect(try await store.claimNext(worker: "w", leaseUntil: Date() + 60, now: Date()) == nil)
            _ = try await store.finish(executionID: q1.id, Self.outcome())
            #expect(try await store.claimNext(worker: "w", leaseUntil: Date() + 60, now: Date())?.id == q2.id)

            let allow = try await Self.job(store, concurrency: .allow)
            let a1 = try await store.enqueue(Self.new(allow), queueLimit: 10)
            let a2 = try await store.enqueue(Self.new(allow), queueLimit: 10)
            #expect(try await store.claimNext(worker: "w", leaseUntil: Date() + 60, now: Date())?.id == a1.id)
            #expect(try await store.claimNext(worker: "w", leaseUntil: Date() + 60, now: Date())?.id == a2.id)
        }
    }

    @Test("The queue bound refuses with queueFull and stores nothing; FIFO within a priority")
    func queueBoundAndOrder() async throws {
        try await Self.withStore { store in
            let job = try await Self.job(store)
            let low1 = try await store.enqueue(Self.new(job, priority: 0), queueLimit: 3)
            let high = try await store.enqueue(Self.new(job, priority: 9), queueLimit: 3)
            let low2 = try await store.enqueue(Self.new(job, priority: 0), queueLimit: 3)
            await #expect(throws: StoreError.queueFull(limit: 3)) { _ = try await store.enqueue(Self.new(job), queueLimit: 3) }
            #expect(try await store.pendingCount() == 3)
            var order: [Int64] = []
            while let e = try await store.claimNext(worker: "w", leaseUntil: Date() + 60, now: Date()) { order.append(e.id) }
            #expect(order == [high.id, low1.id, low2.id])
        }
    }

    @Test("An expired lease is taken over; a live one is renewed, and only by its worker")
    func leases() async throws {
        try await Self.withStore { store in
            let job = try await Self.job(store)
            let e = try await store.enqueue(Self.new(job), queueLimit: 10)
            let now = Date()
            _ = try await store.claimNext(worker: "a", leaseUntil: now + 10, now: now)
            try await store.renewLease(executionID: e.id, worker: "a", until: now + 20)
            await #expect(throws: StoreError.self) { try await store.renewLease(executionID: e.id, worker: "b", until: now + 30) }
            #expect(try await store.claimNext(worker: "b", leaseUntil: now + 40, now: now + 15) == nil, "lease still valid")
            let taken = try #require(try await store.claimNext(worker: "b", leaseUntil: now + 60, now: now + 25))
            #expect(taken.id == e.id && taken.worker == "b" && taken.status == .running)
        }
    }

    @Test("interruptRunning ends RUNNING executions as FAILED interrupted with the reason")
    func interrupt() async throws {
        try await Self.withStore { store in
            let job = try await Self.job(store)
            let e = try await store.enqueue(Self.new(job), queueLimit: 10)
            let p = try await store.enqueue(Self.new(job), queueLimit: 10)
            _ = try await store.claimNext(worker: "old", leaseUntil: Date() + 60, now: Date())
            let interrupted = try await store.interruptRunning(worker: nil, reason: "crash", now: Date())
            #expect(interrupted.map(\.id) == [e.id])
            #expect(interrupted.first?.status == .failed && interrupted.first?.verdict == .interrupted && interrupted.first?.reason == "crash")
            #expect(try await store.execution(id: p.id)?.status == .pending)
        }
    }

    @Test("Output: partial while RUNNING, binary-safe, replaced by the final output")
    func output() async throws {
        try await Self.withStore { store in
            let job = try await Self.job(store)
            let e = try await store.enqueue(Self.new(job), queueLimit: 10)
            _ = try await store.claimNext(worker: "w", leaseUntil: Date() + 60, now: Date())
            let binary = Data((0..<256).map { UInt8($0) }) + Data([0xff, 0xfe, 0xc3])
            try await store.appendOutput(executionID: e.id, stdout: binary, stderr: Data("e1".utf8), stdoutBytes: 259, stderrBytes: 2)
            try await store.appendOutput(executionID: e.id, stdout: Data("+".utf8), stderr: Data(), stdoutBytes: 260, stderrBytes: 2)
            let partial = try #require(try await store.execution(id: e.id))
            #expect(partial.status == .running && partial.stdout == binary + Data("+".utf8) && partial.stdoutBytes == 260)
            var outcome = Self.outcome()
            outcome.stdout = binary
            outcome.stdoutBytes = 1_000_000
            outcome.stdoutTruncated = true
            let done = try await store.finish(executionID: e.id, outcome)
            #expect(done.stdout == binary && done.stdoutBytes == 1_000_000 && done.stdoutTruncated)
            await #expect(throws: StoreError.self) {
                try await store.appendOutput(executionID: e.id, stdout: Data("late".utf8), stderr: Data(), stdoutBytes: 4, stderrBytes: 0)
            }
        }
    }

    @Test("Paging: newest first, filters, cursor; no duplicates, none missing; by-job listing uses an index")
    func paging() async throws {
        try await Self.withStore { store in
            let a = try await Self.job(store), b = try await Self.job(store)
            var ids: [Int64] = []
            for i in 0..<250 { ids.append(try await store.enqueue(Self.new(i % 2 == 0 ? a : b), queueLimit: 1000).id) }
            var seen: [Int64] = []
            var cursor: Int64?
            repeat {
                let page = try await store.executions(ExecutionQuery(jobID: a.id, before: cursor, limit: 40))
                #expect(page.executions.allSatisfy { $0.jobID == a.id })
                seen += page.executions.map(\.id)
                cursor = page.nextCursor
            } while cursor != nil
            let expected = ids.enumerated().filter { $0.offset % 2 == 0 }.map(\.element).reversed()
            #expect(seen == Array(expected))
            let pendingOnly = try await store.executions(ExecutionQuery(statuses: [.running]))
            #expect(pendingOnly.executions.isEmpty && pendingOnly.nextCursor == nil)
            let plan = try await store.pool.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT * FROM execution WHERE job_id = ? AND id < ? ORDER BY id DESC LIMIT 41", arguments: [a.id, 100])
                    .map { $0["detail"] as String }.joined(separator: "; ")
            }
            #expect(plan.contains("USING INDEX execution_job") || plan.contains("USING COVERING INDEX execution_job"), "\(plan)")
        }
    }

    @Test("Prune keeps the newest per job and drops old ones, never PENDING or RUNNING")
    func prune() async throws {
        try await Self.withStore { store in
            let job = try await Self.job(store)
            var finished: [Int64] = []
            for _ in 0..<5 {
                let e = try await store.enqueue(Self.new(job), queueLimit: 10)
                _ = try await store.claimNext(worker: "w", leaseUntil: Date() + 60, now: Date())
                finished.append(try await store.finish(executionID: e.id, Self.outcome()).id)
            }
            let running = try await store.enqueue(Self.new(job), queueLimit: 10)
            _ = try await store.claimNext(worker: "w", leaseUntil: Date() + 60, now: Date())
            let pending = try await store.enqueue(Self.new(job), queueLimit: 10)
            #expect(try await store.prune(keepPerJob: 2, olderThan: nil) == 3)
            let left = try await store.executions(ExecutionQuery(jobID: job.id)).executions.map(\.id)
            #expect(left == [pending.id, running.id, finished[4], finished[3]])
            #expect(try await store.prune(keepPerJob: nil, olderThan: Date() + 3600) == 2)
            #expect(try await store.executions(ExecutionQuery(jobID: job.id)).executions.map(\.id) == [pending.id, running.id])
        }
    }

    @Test("Concurrent claimers take every execution exactly once")
    func concurrentClaims() async throws {
        try await Self.withStore { store in
            let job = try await Self.job(store)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<200 { group.addTask { _ = try await store.enqueue(Self.new(job), queueLimit: 1000) } }
                try await group.waitForAll()
            }
            let claimed = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for w in 0..<4 {
                    group.addTask {
                        var mine: [Int64] = []
                        while let e = try await store.claimNext(worker: "w\(w)", leaseUntil: Date() + 60, now: Date()) { mine.append(e.id) }
                        return mine
                    }
                }
                var all: [Int64] = []
                for try await ids in group { all += ids }
                return all
            }
            #expect(claimed.count == 200 && Set(claimed).count == 200)
        }
    }

    @Test("An unwritable location is a clear unavailable error")
    func unavailable() throws {
        #expect(throws: StoreError.self) { _ = try SQLiteStore(path: "/proc/confine-cannot/db.sqlite") }
    }
}
