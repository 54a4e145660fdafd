import Domain
import Foundation
import GRDB
@testable import Store
import Testing

/// The queue: concurrency rules, the bound, order, leases, and many tasks at once.
@Suite("Store queue")
struct QueueTests {
    @Test("forbid: a second run while one is PENDING or RUNNING is a conflict naming the job and the blocking execution", arguments: StoreKind.allCases)
    func forbid(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob("solo", concurrency: .forbid)
            let first = try await store.enqueue(job)
            let expected = StoreError.conflict("""
                job solo (\(job.id)) already has execution \(first.id) pending or running, and its concurrency rule is forbid
                """)
            await #expect(throws: expected) { _ = try await store.enqueue(job) }
            _ = try await store.claim()
            await #expect(throws: expected, "still refused while RUNNING") { _ = try await store.enqueue(job) }
            #expect(try await store.executionCount() == 1, "nothing stored for a refused run")
            // Another job is not affected.
            let other = try await store.makeJob(concurrency: .forbid)
            _ = try await store.enqueue(other)
            try await store.finish(first.id)
            let second = try await store.enqueue(job)
            #expect(second.status == .pending, "accepted once the first ended")
        }
    }

    @Test("A run's audit entry is written in its enqueue's transaction, naming the new execution; a refused run leaves none", arguments: StoreKind.allCases)
    func auditWithTheRun(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob("audited", concurrency: .forbid)
            var new = SQLiteStore.newExecution(job)
            new.audit = AuditEntry(at: Date(), tokenID: nil, tokenName: "alice", role: .submitter, action: "execution.run",
                                   targetType: "execution", targetID: nil, address: "127.0.0.1", detail: "job \(job.id) (audited)")
            let first = try await store.enqueue(new, queueLimit: 10)
            let entries = try await store.audit(AuditQuery(action: "execution.run")).entries
            #expect(entries.map(\.targetID) == [String(first.id)] && entries.first?.tokenName == "alice", "\(entries)")
            // Refused (forbid): neither an execution nor an entry.
            await #expect(throws: StoreError.self) { _ = try await store.enqueue(new, queueLimit: 10) }
            // Refused (queue full): the same.
            let other = try await store.makeJob()
            var full = SQLiteStore.newExecution(other)
            full.audit = new.audit
            await #expect(throws: StoreError.queueFull(limit: 1)) { _ = try await store.enqueue(full, queueLimit: 1) }
            #expect(try await store.audit(AuditQuery(action: "execution.run")).entries.count == 1)
            #expect(try await store.executionCount() == 1)
        }
    }

    @Test("queue: the second run is accepted but not claimable until the first ends, then runs in order", arguments: StoreKind.allCases)
    func queueRule(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob(concurrency: .queue)
            let q1 = try await store.enqueue(job)
            let q2 = try await store.enqueue(job)
            let q3 = try await store.enqueue(job)
            let other = try await store.makeJob(concurrency: .allow)
            let o = try await store.enqueue(other)
            #expect(try await store.claim()?.id == q1.id)
            #expect(try await store.claim()?.id == o.id, "a later run of another job goes past the waiting ones")
            #expect(try await store.claim() == nil, "q2 waits while q1 runs")
            #expect(try await store.execution(id: q2.id)?.status == .pending)
            try await store.finish(q1.id)
            #expect(try await store.claim()?.id == q2.id)
            #expect(try await store.claim() == nil, "q3 waits while q2 runs")
            _ = try await store.interruptRunning(worker: nil, reason: "restart", now: Date())
            #expect(try await store.claim()?.id == q3.id, "an interrupted run no longer blocks")
        }
    }

    @Test("A finish that claims the worker's next: the end stored, the next claimed in order (a queue job's waiting run included), nil when none is left or none is asked", arguments: StoreKind.allCases)
    func finishThenClaim(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob(concurrency: .queue)
            let q1 = try await store.enqueue(job)
            let q2 = try await store.enqueue(job)
            #expect(try await store.claim()?.id == q1.id)
            let now = Date()
            let claim = ClaimRequest(worker: "w2", leaseUntil: now + 60, now: now)
            let outcome = ExecutionOutcome(verdict: .exited, exitCode: 0, stdout: Data("one\n".utf8), stdoutBytes: 4, finishedAt: now)
            let (finished, next) = try await store.finish(executionID: q1.id, outcome, thenClaim: claim)
            #expect(finished.id == q1.id && finished.status == .success)
            #expect(next?.id == q2.id, "the queue job's waiting run is runnable once the first ended, in the same call")
            #expect(next?.status == .running && next?.worker == "w2")
            #expect(try await store.execution(id: q1.id)?.stdout == Data("one\n".utf8), "the end is stored with its output")
            #expect(try await store.execution(id: q2.id)?.status == .running)
            let last = try await store.finish(executionID: q2.id, outcome, thenClaim: claim)
            #expect(last.finished.status == .success && last.next == nil, "nothing left to claim")
            let q3 = try await store.enqueue(job)
            let q4 = try await store.enqueue(job)
            #expect(try await store.claim()?.id == q3.id)
            let alone = try await store.finish(executionID: q3.id, outcome, thenClaim: nil)
            #expect(alone.next == nil, "no claim asked, none made")
            #expect(try await store.execution(id: q4.id)?.status == .pending)
        }
    }

    @Test("allow: runs of one job are claimed alongside each other", arguments: StoreKind.allCases)
    func allowRule(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob(concurrency: .allow)
            let a1 = try await store.enqueue(job)
            let a2 = try await store.enqueue(job)
            let a3 = try await store.enqueue(job)
            #expect(try await store.claim()?.id == a1.id)
            #expect(try await store.claim()?.id == a2.id)
            #expect(try await store.claim()?.id == a3.id)
            let running = try await store.executions(ExecutionQuery(jobID: job.id, statuses: [.running]))
            #expect(running.executions.count == 3)
        }
    }

    @Test("The queue bound: queueFull once the limit is pending, nothing stored; room again after a claim", arguments: StoreKind.allCases)
    func queueBound(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob()
            for _ in 0..<3 { _ = try await store.enqueue(job, queueLimit: 3) }
            await #expect(throws: StoreError.queueFull(limit: 3)) { _ = try await store.enqueue(job, queueLimit: 3) }
            #expect(try await store.pendingCount() == 3)
            #expect(try await store.executionCount() == 3, "nothing half-stored")
            // RUNNING ones do not count against the bound.
            _ = try await store.claim()
            let fourth = try await store.enqueue(job, queueLimit: 3)
            #expect(fourth.status == .pending)
            #expect(try await store.pendingCount() == 3)
            await #expect(throws: StoreError.queueFull(limit: 0)) { _ = try await store.enqueue(job, queueLimit: 0) }
        }
    }

    @Test("FIFO per priority: highest priority first, oldest first within a priority", arguments: StoreKind.allCases)
    func fifoPerPriority(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob()
            var byPriority: [(priority: Int, id: Int64)] = []
            for priority in [0, 5, 0, 5, 9, -1, 0, 9, 5] {
                byPriority.append((priority, try await store.enqueue(job, priority: priority).id))
            }
            var order: [Int64] = []
            while let e = try await store.claim() { order.append(e.id) }
            let expected = byPriority.sorted { $0.priority != $1.priority ? $0.priority > $1.priority : $0.id < $1.id }.map(\.id)
            #expect(order == expected)
            #expect(order.count == 9)
        }
    }

    /// SQLite only: on PostgreSQL a dead node's executions end `interrupted` once its heartbeat
    /// is older than node_timeout (`PostgresStoreTests.deadNodeTakeover`), never run twice.
    @Test("Leases: renewed only by their worker; an expired one is taken over first, keeping started_at, counted")
    func leaseTakeOver() async throws {
        try await withStore { store in
            let job = try await store.makeJob()
            let e = try await store.enqueue(job)
            let t0 = millis(Date())
            let claimed = try #require(try await store.claimNext(worker: "a", leaseUntil: t0 + 10, now: t0))
            try await store.appendOutput(executionID: e.id, stdout: Data("half".utf8), stdoutOffset: 0, stderr: Data("err".utf8),
                                         stderrOffset: 0, stdoutBytes: 4, stderrBytes: 3)
            try await store.renewLease(executionID: e.id, worker: "a", until: t0 + 20)
            await #expect(throws: StoreError.notFound("running execution \(e.id) of worker b")) {
                try await store.renewLease(executionID: e.id, worker: "b", until: t0 + 30)
            }
            let waiting = try await store.enqueue(job, priority: 100)
            #expect(try await store.claimNext(worker: "b", leaseUntil: t0 + 40, now: t0 + 15)?.id == waiting.id,
                    "a live lease is not taken over")
            #expect(try await store.claimNext(worker: "b", leaseUntil: t0 + 40, now: t0 + 19) == nil)
            try await store.finish(waiting.id)

            let taken = try #require(try await store.claimNext(worker: "b", leaseUntil: t0 + 60, now: t0 + 25))
            #expect(taken.id == e.id && taken.status == .running && taken.worker == "b" && taken.takeovers == 1)
            #expect(taken.startedAt == claimed.startedAt && taken.leaseDeadline == t0 + 60)
            #expect(taken.stdout.isEmpty && taken.stderr.isEmpty && taken.stdoutBytes == 0, "the dead run's output goes")
            await #expect(throws: StoreError.self, "the dead worker lost it") {
                try await store.renewLease(executionID: e.id, worker: "a", until: t0 + 90)
            }
            try await store.renewLease(executionID: e.id, worker: "b", until: t0 + 90)
            #expect(try await store.claimNext(worker: "c", leaseUntil: t0 + 200, now: t0 + 80) == nil, "renewed: not expired")
            let again = try #require(try await store.claimNext(worker: "c", leaseUntil: t0 + 200, now: t0 + 100))
            #expect(again.id == e.id && again.takeovers == 2 && again.worker == "c" && again.startedAt == claimed.startedAt)
            #expect(try await store.finish(e.id).status == .success)
        }
    }

    @Test("Many tasks at once: 200 enqueues racing 4 claimers; every execution claimed exactly once", arguments: StoreKind.allCases)
    func concurrentEnqueueAndClaim(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob(concurrency: .allow)
            let total = 200
            let claimedCount = Locked(0)
            let (enqueued, claimed) = try await withThrowingTaskGroup(of: ([Int64], [Int64]).self) { group in
                for producer in 0..<4 {
                    group.addTask {
                        var mine: [Int64] = []
                        for _ in 0..<(total / 4) { mine.append(try await store.enqueue(job, priority: producer % 2).id) }
                        return (mine, [])
                    }
                }
                for worker in 0..<4 {
                    group.addTask {
                        var mine: [Int64] = []
                        let deadline = Date() + 60
                        while claimedCount.withLock({ $0 }) < total && Date() < deadline {
                            if let e = try await store.claim("w\(worker)") {
                                #expect(e.status == .running && e.worker == "w\(worker)")
                                mine.append(e.id)
                                claimedCount.withLock { $0 += 1 }
                                try await store.finish(e.id)
                            } else {
                                try await Task.sleep(for: .milliseconds(1))
                            }
                        }
                        return ([], mine)
                    }
                }
                var enqueued: [Int64] = [], claimed: [Int64] = []
                for try await (e, c) in group {
                    enqueued += e
                    claimed += c
                }
                return (enqueued, claimed)
            }
            #expect(enqueued.count == total && Set(enqueued).count == total)
            #expect(claimed.count == total, "claimed \(claimed.count)")
            #expect(Set(claimed) == Set(enqueued), "each exactly once")
            #expect(try await store.pendingCount() == 0)
            let finished = try await store.walk(ExecutionQuery(jobID: job.id, statuses: [.success], limit: 1000))
            #expect(finished.count == total)
        }
    }

    @Test("Many claimers on a queue job: never two of its runs at once, and they run in order", arguments: StoreKind.allCases)
    func concurrentQueueRule(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob(concurrency: .queue)
            var enqueued: [Int64] = []
            for _ in 0..<30 { enqueued.append(try await store.enqueue(job).id) }
            let ids = enqueued
            let order = Locked<[Int64]>([])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        let deadline = Date() + 60
                        while order.withLock({ $0.count }) < ids.count && Date() < deadline {
                            guard let e = try await store.claim("w\(worker)") else {
                                try await Task.sleep(for: .milliseconds(1))
                                continue
                            }
                            let running = try await store.executions(ExecutionQuery(jobID: job.id, statuses: [.running]))
                            #expect(running.executions.map(\.id) == [e.id], "only one run of a queue job at a time")
                            order.withLock { $0.append(e.id) }
                            try await store.finish(e.id)
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(order.withLock { $0 } == ids)
        }
    }
}
