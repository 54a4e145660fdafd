import Domain
import Foundation
import GRDB
@testable import Store
import Testing

/// Jobs, and the lifecycle of an execution with its state guards.
@Suite("Store jobs and lifecycle")
struct LifecycleTests {
    @Test("Jobs: create, read back, unique names (create and rename), patch only what is given, unknown ids", arguments: StoreKind.allCases)
    func jobCRUD(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let before = millis(Date())
            let alpha = try await store.createJob(NewJob(name: "alpha", scriptType: .python, scriptContent: "print('α')",
                                                        policy: "strict", limits: ["memory=64MiB", "wall=2s"],
                                                        concurrency: .queue, arguments: ["-x", "a b"],
                                                        environment: ["LANG": "C.UTF-8", "EMPTY": ""]))
            #expect(alpha.name == "alpha" && alpha.scriptType == .python && alpha.scriptContent == "print('α')")
            #expect(alpha.policy == "strict" && alpha.limits == ["memory=64MiB", "wall=2s"] && alpha.concurrency == .queue)
            #expect(alpha.arguments == ["-x", "a b"] && alpha.environment == ["LANG": "C.UTF-8", "EMPTY": ""])
            #expect(alpha.createdAt == alpha.updatedAt && alpha.createdAt >= before)
            #expect(try await store.job(id: alpha.id) == alpha)
            #expect(try await store.job(named: "alpha") == alpha)
            #expect(try await store.job(named: "nobody") == nil)
            #expect(try await store.job(id: 999) == nil)

            await #expect(throws: StoreError.conflict("a job named alpha already exists")) {
                _ = try await store.makeJob("alpha")
            }
            let beta = try await store.makeJob("beta", type: .bash)
            let gamma = try await store.makeJob("gamma", type: .python)
            #expect(try await store.jobs(scriptType: nil).map(\.id) == [alpha.id, beta.id, gamma.id])
            #expect(try await store.jobs(scriptType: .python).map(\.id) == [alpha.id, gamma.id])
            #expect(try await store.jobs(scriptType: ScriptType("ruby")).isEmpty)

            try await Task.sleep(for: .milliseconds(5))
            let patched = try await store.updateJob(id: alpha.id, JobPatch(scriptContent: "print(2)", concurrency: .allow))
            #expect(patched.scriptContent == "print(2)" && patched.concurrency == .allow)
            #expect(patched.name == "alpha" && patched.policy == "strict" && patched.limits == alpha.limits)
            #expect(patched.arguments == alpha.arguments && patched.environment == alpha.environment)
            #expect(patched.createdAt == alpha.createdAt && patched.updatedAt > alpha.updatedAt)
            #expect(try await store.job(id: alpha.id) == patched)

            await #expect(throws: StoreError.conflict("a job named beta already exists")) {
                _ = try await store.updateJob(id: alpha.id, JobPatch(name: "beta"))
            }
            #expect(try await store.job(id: alpha.id)?.name == "alpha", "a refused rename changes nothing")
            let renamed = try await store.updateJob(id: alpha.id, JobPatch(name: "alpha-2", environment: [:]))
            #expect(renamed.name == "alpha-2" && renamed.environment.isEmpty)
            #expect(try await store.job(named: "alpha") == nil)
            let freed = try await store.makeJob("alpha")
            #expect(freed.id != alpha.id, "the old name is free again")

            await #expect(throws: StoreError.notFound("job 999")) { _ = try await store.updateJob(id: 999, JobPatch(name: "x")) }
            await #expect(throws: StoreError.notFound("job 42")) { try await store.deleteJob(id: 42) }
        }
    }

    @Test("Deleting a job: refused while an execution is pending or running, then cascades to its executions", arguments: StoreKind.allCases)
    func deleteJob(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob("doomed")
            let other = try await store.makeJob("survivor")
            let kept = try await store.enqueue(other)
            let pending = try await store.enqueue(job)
            let refused = await #expect(throws: StoreError.self) { try await store.deleteJob(id: job.id) }
            #expect(refused == .conflict("""
                job doomed (\(job.id)) has execution \(pending.id) pending or running; cancel it or let it end before \
                deleting the job
                """))
            let running = try #require(try await store.claim())
            #expect(running.id == kept.id)
            _ = try await store.claim()  // `pending` too
            _ = try await store.finish(kept.id)
            await #expect(throws: StoreError.self, "refused while running") { try await store.deleteJob(id: job.id) }
            #expect(try await store.job(id: job.id) != nil)
            #expect(try await store.execution(id: pending.id) != nil)

            try await store.finish(pending.id)
            let finishedToo = try await store.enqueue(job)
            _ = try await store.cancel(executionID: finishedToo.id, now: Date())
            try await store.deleteJob(id: job.id)
            #expect(try await store.job(id: job.id) == nil)
            #expect(try await store.execution(id: pending.id) == nil, "executions go with their job")
            #expect(try await store.execution(id: finishedToo.id) == nil)
            #expect(try await store.execution(id: kept.id) != nil, "another job's executions stay")
            #expect(try await store.executionCount() == 1)
        }
    }

    @Test("Lifecycle: PENDING → RUNNING → final, every field stored; finish twice or from PENDING is an invalid transition", arguments: StoreKind.allCases)
    func lifecycleGuards(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            var job = try await store.makeJob("life")
            job.arguments = ["--flag"]
            job.environment = ["A": "1"]
            let created = millis(Date(timeIntervalSince1970: 1_800_000_000.123))
            let pending = try await store.enqueue(SQLiteStore.newExecution(job, priority: 4, at: created, stdin: Data("in".utf8)),
                                                  queueLimit: 10)
            #expect(pending.status == .pending && pending.verdict == nil && pending.createdAt == created)
            #expect(pending.arguments == ["--flag"] && pending.environment == ["A": "1"] && pending.stdin == Data("in".utf8))
            #expect(pending.priority == 4 && pending.startedAt == nil && pending.worker == nil && pending.takeovers == 0)
            #expect(try await store.execution(id: pending.id) == pending)

            await #expect(throws: StoreError.invalidTransition(executionID: pending.id, from: .pending, to: "SUCCESS")) {
                try await store.finish(pending.id)
            }
            await #expect(throws: StoreError.invalidTransition(executionID: pending.id, from: .pending, to: "given more output")) {
                try await store.appendOutput(executionID: pending.id, stdout: Data("x".utf8), stdoutOffset: 0, stderr: Data(),
                                             stderrOffset: 0, stdoutBytes: 1, stderrBytes: 0)
            }

            let now = millis(Date())
            let running = try #require(try await store.claimNext(worker: "host:7", leaseUntil: now + 30, now: now))
            #expect(running.id == pending.id && running.status == .running && running.worker == "host:7")
            #expect(running.startedAt == now && running.leaseDeadline == now + 30)
            #expect(try await store.claim() == nil, "nothing else to claim")

            let end = millis(Date() + 1)
            let outcome = ExecutionOutcome(verdict: .signaled, exitCode: nil, signal: 9, reason: "killed",
                                           stdout: Data("o".utf8), stderr: Data("e".utf8), stdoutBytes: 10, stderrBytes: 20,
                                           stdoutTruncated: true, stderrTruncated: false,
                                           usage: ResourceUsage(wallMs: 1234, cpuMs: 567, memoryPeakBytes: 8 << 20),
                                           finishedAt: end)
            let finished = try await store.finish(executionID: running.id, outcome)
            #expect(finished.stdout.isEmpty && finished.stderr.isEmpty, "finish answers without the output")
            let done = try #require(try await store.execution(id: running.id))
            #expect(done == { var e = finished; e.stdout = Data("o".utf8); e.stderr = Data("e".utf8); return e }())
            #expect(done.status == .failed && done.verdict == .signaled && done.signal == 9 && done.exitCode == nil)
            #expect(done.reason == "killed" && done.stdout == Data("o".utf8) && done.stderr == Data("e".utf8))
            #expect(done.stdoutBytes == 10 && done.stderrBytes == 20 && done.stdoutTruncated && !done.stderrTruncated)
            #expect(done.usage == ResourceUsage(wallMs: 1234, cpuMs: 567, memoryPeakBytes: 8 << 20))
            #expect(done.finishedAt == end && done.startedAt == now && done.leaseDeadline == nil && done.worker == "host:7")
            #expect(try await store.execution(id: done.id) == done)

            // Double finish is impossible, whatever the outcome.
            await #expect(throws: StoreError.invalidTransition(executionID: done.id, from: .failed, to: "SUCCESS")) {
                try await store.finish(done.id)
            }
            await #expect(throws: StoreError.invalidTransition(executionID: done.id, from: .failed, to: "TIMED_OUT")) {
                try await store.finish(done.id, .wallTimeout)
            }
            await #expect(throws: StoreError.self) {
                try await store.appendOutput(executionID: done.id, stdout: Data("late".utf8), stdoutOffset: 0, stderr: Data(),
                                             stderrOffset: 0, stdoutBytes: 4, stderrBytes: 0)
            }
            await #expect(throws: StoreError.notFound("running execution \(done.id) of worker host:7")) {
                try await store.renewLease(executionID: done.id, worker: "host:7", until: Date() + 60)
            }
            #expect(try await store.execution(id: done.id) == done, "refused transitions change nothing")
            await #expect(throws: StoreError.notFound("execution 999")) { try await store.finish(999) }
            await #expect(throws: StoreError.notFound("job 999")) {
                var orphan = SQLiteStore.newExecution(job)
                orphan.jobID = 999
                _ = try await store.enqueue(orphan, queueLimit: 10)
            }
        }
    }

    @Test("Finishing races: of 8 concurrent finishes of one RUNNING execution exactly one wins", arguments: StoreKind.allCases)
    func concurrentFinish(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob()
            let e = try await store.enqueue(job)
            _ = try await store.claim()
            let results = await withTaskGroup(of: Bool.self) { group in
                for i in 0..<8 {
                    group.addTask { (try? await store.finish(e.id, .exited, exit: Int32(i))) != nil }
                }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.filter { $0 }.count == 1)
            #expect(try await store.execution(id: e.id)?.status.isFinal == true)
        }
    }

    @Test("Cancel: PENDING ends at once, RUNNING gets the flag, a final one is refused", arguments: StoreKind.allCases)
    func cancel(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob()
            let pending = try await store.enqueue(job)
            let now = millis(Date())
            let cancelled = try await store.cancel(executionID: pending.id, now: now)
            #expect(cancelled.status == .cancelled && cancelled.verdict == .cancelled && cancelled.finishedAt == now)
            #expect(cancelled.startedAt == nil && !cancelled.cancelRequested)
            #expect(try await store.claim() == nil, "a cancelled execution is never claimed")
            #expect(try await store.pendingCount() == 0)
            await #expect(throws: StoreError.invalidTransition(executionID: pending.id, from: .cancelled, to: "CANCELLED")) {
                _ = try await store.cancel(executionID: pending.id, now: Date())
            }
            await #expect(throws: StoreError.invalidTransition(executionID: pending.id, from: .cancelled, to: "SUCCESS")) {
                try await store.finish(pending.id)
            }

            let second = try await store.enqueue(job)
            _ = try await store.claim()
            #expect(try await !store.isCancelRequested(executionID: second.id))
            let flagged = try await store.cancel(executionID: second.id, now: Date())
            #expect(flagged.status == .running && flagged.cancelRequested && flagged.finishedAt == nil)
            #expect(try await store.isCancelRequested(executionID: second.id))
            #expect(try await store.cancel(executionID: second.id, now: Date()).cancelRequested, "asking twice is harmless")
            let ended = try await store.finish(executionID: second.id, ExecutionOutcome(verdict: .cancelled, finishedAt: Date()))
            #expect(ended.status == .cancelled && ended.verdict == .cancelled)

            let third = try await store.enqueue(job)
            _ = try await store.claim()
            try await store.finish(third.id)
            await #expect(throws: StoreError.invalidTransition(executionID: third.id, from: .success, to: "CANCELLED")) {
                _ = try await store.cancel(executionID: third.id, now: Date())
            }
            #expect(try await store.execution(id: third.id)?.status == .success)
            await #expect(throws: StoreError.notFound("execution 999")) { _ = try await store.cancel(executionID: 999, now: Date()) }
            #expect(try await !store.isCancelRequested(executionID: 999))
        }
    }

    @Test("interruptRunning: RUNNING ones of a worker (or of all) end FAILED interrupted with the reason; others untouched", arguments: StoreKind.allCases)
    func interruptRunning(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob()
            let a = try await store.enqueue(job)
            let b = try await store.enqueue(job)
            let done = try await store.enqueue(job)
            let pending = try await store.enqueue(job)
            _ = try await store.claim("worker-a")
            _ = try await store.claim("worker-b")
            _ = try await store.claim("worker-a")
            try await store.finish(done.id)
            let now = millis(Date())

            let first = try await store.interruptRunning(worker: "worker-a", reason: "worker-a stopped", now: now)
            #expect(first.map(\.id) == [a.id])
            let e = try #require(first.first)
            #expect(e.status == .failed && e.verdict == .interrupted && e.reason == "worker-a stopped")
            #expect(e.finishedAt == now && e.leaseDeadline == nil)
            #expect(try await store.execution(id: b.id)?.status == .running, "another worker's run goes on")

            let rest = try await store.interruptRunning(worker: nil, reason: "the server crashed", now: now)
            #expect(rest.map(\.id) == [b.id] && rest.first?.reason == "the server crashed")
            #expect(try await store.interruptRunning(worker: nil, reason: "again", now: now).isEmpty)
            #expect(try await store.execution(id: pending.id)?.status == .pending)
            #expect(try await store.execution(id: done.id)?.status == .success)
            await #expect(throws: StoreError.invalidTransition(executionID: a.id, from: .failed, to: "SUCCESS")) {
                try await store.finish(a.id)
            }
        }
    }

    @Test("Editing a job never rewrites the snapshots of its executions", arguments: StoreKind.allCases)
    func snapshotsSurviveEdits(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.createJob(NewJob(name: "snap", scriptType: .bash, scriptContent: "echo v1", policy: "p1",
                                                       concurrency: .allow, arguments: ["one"], environment: ["V": "1"]))
            let first = try await store.enqueue(job)
            let running = try await store.enqueue(job)
            _ = try await store.claim()
            _ = try await store.claim()
            try await store.finish(first.id)
            let edited = try await store.updateJob(id: job.id, JobPatch(name: "snap-2", scriptType: .python,
                                                                       scriptContent: "print('v2')", policy: "p2",
                                                                       limits: ["memory=1MiB"], arguments: ["two"],
                                                                       environment: ["V": "2"]))
            for id in [first.id, running.id] {
                let e = try #require(try await store.execution(id: id))
                #expect(e.scriptSnapshot == "echo v1" && e.scriptType == .bash && e.policyName == "p1")
                #expect(e.policySnapshot == "name: p1\n# limits: []\n" && e.arguments == ["one"] && e.environment == ["V": "1"])
            }
            let later = try await store.enqueue(edited)
            #expect(later.scriptSnapshot == "print('v2')" && later.scriptType == .python && later.policyName == "p2")
            #expect(later.arguments == ["two"] && later.environment == ["V": "2"])
        }
    }

    @Test("Nodes: registered, alive while beating, stopped cleanly, restarted anew; running counted", arguments: StoreKind.allCases)
    func nodeRows(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.registerNode(name: "host:8000", version: "v-test", workers: 4)
            var nodes = try await store.nodes(timeout: .seconds(30))
            #expect(nodes.count == 1 && nodes[0].name == "host:8000" && nodes[0].state == .alive && nodes[0].version == "v-test")
            #expect(nodes[0].workers == 4 && nodes[0].running == 0)
            let job = try await store.makeJob(concurrency: .allow)
            _ = try await store.enqueue(job)
            _ = try await store.claim("host:8000")
            let before = nodes[0].lastHeartbeatAt
            try await Task.sleep(for: .milliseconds(20))
            try await store.heartbeat(node: "host:8000")
            nodes = try await store.nodes(timeout: .seconds(30))
            #expect(nodes[0].running == 1 && nodes[0].lastHeartbeatAt > before)
            try await store.stopNode(name: "host:8000")
            #expect(try await store.nodes(timeout: .seconds(30))[0].state == .stopped)
            try await store.registerNode(name: "host:8000", version: "v-next", workers: 2)
            nodes = try await store.nodes(timeout: .seconds(30))
            #expect(nodes[0].state == .alive && nodes[0].version == "v-next" && nodes[0].workers == 2)
            let recovered = try await store.recoverAtStart(node: "host:8000", reason: "restart", now: Date())
            #expect(recovered.count == 1 && recovered[0].verdict == .interrupted)
        }
    }
}
