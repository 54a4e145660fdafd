import ConfineTestSupport
import Domain
import Engine
import Foundation
import Glibc
import Sandbox
import Store
import Testing

/// The engine with a real SQLite store and real sandboxes.
@Suite("Engine", .enabled(if: EngineFixture.canRun))
struct EngineTests {
    @Test("A job runs to SUCCESS with its output, usage and timestamps kept")
    func runsToSuccess() async throws {
        try await EngineFixture.with { f in
            let job = try await f.job("echo hello; echo oops >&2")
            let queued = try await f.engine.submit(jobID: job.id)
            #expect(queued.status == .pending)
            let done = try await f.waitFinal(queued.id)
            #expect(done.status == .success, "\(done)")
            #expect(done.verdict == .exited && done.exitCode == 0)
            #expect(String(decoding: done.stdout, as: UTF8.self) == "hello\n")
            #expect(String(decoding: done.stderr, as: UTF8.self) == "oops\n")
            #expect(done.startedAt != nil && done.finishedAt != nil && done.worker != nil)
            #expect(done.usage.memoryPeakBytes != nil)
        }
    }

    @Test("Failures, timeouts and setup failures get their status, verdict and reason")
    func failuresAndTimeouts() async throws {
        try await EngineFixture.with { f in
            let failing = try await f.engine.submit(jobID: try await f.job("exit 3").id)
            let timeout = try await f.engine.submit(jobID: try await f.job("sleep 30", limits: ["wall_time=500ms"]).id)
            let python = try await f.engine.submit(jobID: try await f.job("import sys; print(sys.argv[1:]); sys.exit(0)", type: .python).id,
                                                   options: RunOptions(arguments: ["a", "b"]))
            let f1 = try await f.waitFinal(failing.id)
            #expect(f1.status == .failed && f1.exitCode == 3 && f1.verdict == .exited)
            let t1 = try await f.waitFinal(timeout.id)
            #expect(t1.status == .timedOut && t1.verdict == .wallTimeout, "\(t1.status) \(String(describing: t1.verdict))")
            let p1 = try await f.waitFinal(python.id)
            #expect(p1.status == .success && String(decoding: p1.stdout, as: UTF8.self) == "['a', 'b']\n", "\(p1)")
        }
    }

    @Test("Concurrency forbid: a second run while one is pending or running is refused")
    func forbid() async throws {
        try await EngineFixture.with { f in
            let job = try await f.job("sleep 0.5")
            let first = try await f.engine.submit(jobID: job.id)
            await #expect(throws: EngineError.self) { _ = try await f.engine.submit(jobID: job.id) }
            _ = try await f.waitFinal(first.id)
            let again = try await f.engine.submit(jobID: job.id)
            #expect(try await f.waitFinal(again.id).status == .success)
        }
    }

    @Test("Concurrency queue runs one after another; allow runs alongside")
    func queueAndAllow() async throws {
        try await EngineFixture.with(workers: 3) { f in
            let queued = try await f.job("sleep 0.3", concurrency: .queue)
            let q = [try await f.engine.submit(jobID: queued.id), try await f.engine.submit(jobID: queued.id)]
            let qa = try await f.waitFinal(q[0].id), qb = try await f.waitFinal(q[1].id)
            #expect(qa.status == .success && qb.status == .success)
            #expect(try #require(qb.startedAt) >= (try #require(qa.finishedAt)).addingTimeInterval(-0.05))
            let allowed = try await f.job("sleep 0.5", concurrency: .allow)
            let a = [try await f.engine.submit(jobID: allowed.id), try await f.engine.submit(jobID: allowed.id)]
            let aa = try await f.waitFinal(a[0].id), ab = try await f.waitFinal(a[1].id)
            #expect(try #require(ab.startedAt) < (try #require(aa.finishedAt)), "allow runs overlap")
        }
    }

    @Test("The queue is bounded: past it a submission is refused and nothing is stored")
    func queueBound() async throws {
        // The running one sleeps long enough that it cannot end (and free a queue slot) while the
        // test submits, however loaded the machine; the short grace interrupts it at the end.
        try await EngineFixture.with(workers: 1, queueLimit: 2, grace: .milliseconds(100)) { f in
            let job = try await f.job("sleep 30", concurrency: .allow)
            let running = try await f.engine.submit(jobID: job.id)
            _ = try await f.waitStatus(running.id, .running)
            _ = try await f.engine.submit(jobID: job.id)
            _ = try await f.engine.submit(jobID: job.id)
            do {
                _ = try await f.engine.submit(jobID: job.id)
                Issue.record("a third pending execution was accepted")
            } catch {
                #expect(error as? EngineError == .store(.queueFull(limit: 2)), "\(error)")
            }
            let all = try await f.store.executions(ExecutionQuery(jobID: job.id))
            #expect(all.executions.count == 3)
        }
    }

    @Test("Cancelling: a pending one at once, a running one within a moment")
    func cancellation() async throws {
        try await EngineFixture.with(workers: 1) { f in
            let job = try await f.job("echo started; sleep 30", concurrency: .allow)
            let running = try await f.engine.submit(jobID: job.id)
            let pending = try await f.engine.submit(jobID: job.id)
            _ = try await f.waitStatus(running.id, .running)
            let p = try await f.engine.cancel(executionID: pending.id)
            #expect(p.status == .cancelled && p.verdict == .cancelled)
            // Cancelled once it is running for sure (its output is there), however slow the machine.
            for _ in 0..<500 {
                if let now = try await f.store.execution(id: running.id), !now.stdout.isEmpty { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            _ = try await f.engine.cancel(executionID: running.id)
            let r = try await f.waitFinal(running.id)
            // Killed, not ended by its 30 s sleep (how fast is a benchmark's business, not a
            // test's: these machines are shared and noisy).
            #expect(r.usage.wallMs < 15_000, "wall \(r.usage.wallMs) ms")
            #expect(r.status == .cancelled && r.verdict == .cancelled, "\(r.status)")
            #expect(String(decoding: r.stdout, as: UTF8.self) == "started\n")
            await #expect(throws: EngineError.self) { try await f.engine.cancel(executionID: r.id) }
        }
    }

    @Test("Scripts over the size cap, unknown script types and disallowed environment are refused with a reason")
    func refusals() async throws {
        try await EngineFixture.with { f in
            let big = try await f.job(String(repeating: "#", count: (1 << 20) + 1))
            do {
                _ = try await f.engine.submit(jobID: big.id)
                Issue.record("an oversized script was accepted")
            } catch {
                #expect(error as? EngineError == .scriptTooLarge(bytes: (1 << 20) + 1, limit: 1 << 20))
            }
            let ruby = try await f.job("puts 1", type: ScriptType("ruby"))
            await #expect(throws: EngineError.unknownRuntime("ruby", known: ["bash", "python"])) { _ = try await f.engine.submit(jobID: ruby.id) }
            let job = try await f.job("env")
            await #expect(throws: EngineError.self) { _ = try await f.engine.submit(jobID: job.id, options: RunOptions(environment: ["SECRET": "x"])) }
            await #expect(throws: EngineError.jobNotFound(424242)) { _ = try await f.engine.submit(jobID: 424242) }
            #expect(try await f.store.pendingCount() == 0, "nothing refused was stored")
        }
    }

    @Test("Partial output is visible while RUNNING")
    func partialOutput() async throws {
        try await EngineFixture.with { f in
            let job = try await f.job("echo first; sleep 1.5; echo second")
            let e = try await f.engine.submit(jobID: job.id)
            let deadline = ContinuousClock.now + .seconds(5)
            var seen: Execution?
            while ContinuousClock.now < deadline {
                let now = try #require(try await f.store.execution(id: e.id))
                if now.status == .running && !now.stdout.isEmpty { seen = now; break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let partial = try #require(seen, "no partial output while running")
            // Seen while RUNNING: the first line (or both, on a machine so loaded that the second
            // came before a poll saw the first).
            #expect(["first\n", "first\nsecond\n"].contains(String(decoding: partial.stdout, as: UTF8.self)))
            let done = try await f.waitFinal(e.id)
            #expect(String(decoding: done.stdout, as: UTF8.self) == "first\nsecond\n")
        }
    }

    @Test("Editing a job never rewrites an execution's script or policy snapshot")
    func snapshots() async throws {
        try await EngineFixture.with { f in
            let job = try await f.job("echo v1")
            let e1 = try await f.waitFinal(try await f.engine.submit(jobID: job.id).id)
            _ = try await f.store.updateJob(id: job.id, JobPatch(scriptContent: "echo v2", limits: ["memory=64MiB"]))
            let e2 = try await f.waitFinal(try await f.engine.submit(jobID: job.id).id)
            let again = try #require(try await f.store.execution(id: e1.id))
            #expect(again.scriptSnapshot == "echo v1" && String(decoding: again.stdout, as: UTF8.self) == "v1\n")
            #expect(e2.scriptSnapshot == "echo v2")
            #expect(again.policySnapshot.contains("memory: 256MiB"))
            #expect(e2.policySnapshot.contains("memory: 64MiB"))
        }
    }

    @Test("Recovery: RUNNING executions of a crashed server end as FAILED interrupted; PENDING ones run")
    func recovery() async throws {
        let path = EngineFixture.temporaryPath()
        defer { EngineFixture.remove(path) }
        let store = try SQLiteStore(path: path)
        let job = try await store.createJob(NewJob(name: "crashed", scriptType: .bash, scriptContent: "echo ran", concurrency: .allow))
        let policy = try EngineFixture.policies.policy(named: "default")
        func new() -> NewExecution {
            NewExecution(jobID: job.id, scriptType: .bash, scriptSnapshot: "echo ran", policyName: "default",
                         policySnapshot: policy.renderYAML(), concurrency: .allow, createdAt: Date())
        }
        let lost = try await store.enqueue(new(), queueLimit: 10)
        _ = try await store.claimNext(worker: "dead-server:1", leaseUntil: Date() + 3600, now: Date())
        let waiting = try await store.enqueue(new(), queueLimit: 10)
        try await EngineFixture.with(store: store) { f in
            let interrupted = try #require(try await f.store.execution(id: lost.id))
            #expect(interrupted.status == .failed && interrupted.verdict == .interrupted)
            #expect(interrupted.reason?.contains("stopped") == true)
            let ran = try await f.waitFinal(waiting.id)
            #expect(ran.status == .success && String(decoding: ran.stdout, as: UTF8.self) == "ran\n")
        }
    }

    @Test("Graceful shutdown: running executions finish within the grace, the rest are interrupted")
    func gracefulShutdown() async throws {
        try await EngineFixture.with(workers: 2, grace: .milliseconds(TestTimeScale.scaled(700)), shutdown: false) { f in
            let quick = try await f.engine.submit(jobID: try await f.job("sleep 0.2; echo done").id)
            let slow = try await f.engine.submit(jobID: try await f.job("sleep 30").id)
            _ = try await f.waitStatus(slow.id, .running)
            _ = try await f.waitStarted(quick.id)
            await f.engine.shutdown()
            let q = try #require(try await f.store.execution(id: quick.id))
            let s = try #require(try await f.store.execution(id: slow.id))
            #expect(q.status == .success, "\(q.status)")
            #expect(s.status == .failed && s.verdict == .interrupted, "\(s.status) \(String(describing: s.verdict))")
            await #expect(throws: EngineError.self) { _ = try await f.engine.submit(jobID: q.jobID ?? 0) }
        }
    }

    @Test("Retention keeps the newest executions of each job")
    func retention() async throws {
        try await EngineFixture.with(keepPerJob: 2, retentionInterval: .milliseconds(200)) { f in
            let job = try await f.job("true")
            var ids: [Int64] = []
            for _ in 0..<4 { ids.append(try await f.waitFinal(try await f.engine.submit(jobID: job.id).id).id) }
            // Retention runs every 200 ms; on a machine loaded by the rest of the suite a tick
            // can come late, so the newest two are waited for (up to 20 s), never fewer.
            let newest = Array(ids.suffix(2).reversed())
            var left: [Int64] = []
            for _ in 0..<200 {
                left = try await f.store.executions(ExecutionQuery(jobID: job.id)).executions.map(\.id)
                if left.count <= 2 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(left == newest, "\(left)")
        }
    }
}

/// A store on a temporary file, a sandbox, the repository's policies and an engine.
struct EngineFixture {
    let store: SQLiteStore
    let engine: Engine

    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static let policies: PolicySet = try! PolicySet.load(directory: repoRoot + "/policies")

    static var canRun: Bool {
        if geteuid() != 0 {
            print("SKIP engine tests: sandboxed runs need root; running as uid \(geteuid())")
            return false
        }
        return true
    }

    static let sandbox: Sandbox = try! Sandbox()

    static func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("confine-engine-\(UUID().uuidString).sqlite").path
    }

    static func remove(_ path: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    static func with(store: SQLiteStore? = nil, workers: Int = 2, queueLimit: Int = 100, grace: Duration = .seconds(5),
                     keepPerJob: Int? = nil, retentionInterval: Duration = .seconds(60), shutdown: Bool = true,
                     _ body: (EngineFixture) async throws -> Void) async throws {
        let path = temporaryPath()
        defer { remove(path) }
        var configuration = EngineConfiguration()
        configuration.workers = workers
        configuration.logger.logLevel = .warning
        configuration.queueLimit = queueLimit
        configuration.shutdownGrace = grace
        configuration.keepPerJob = keepPerJob
        configuration.retentionInterval = retentionInterval
        configuration.outputFlushInterval = .milliseconds(100)
        let s = try store ?? SQLiteStore(path: path)
        let engine = Engine(store: s, sandbox: sandbox, policies: policies, configuration: configuration)
        try await engine.start()
        let fixture = EngineFixture(store: s, engine: engine)
        do { try await body(fixture) } catch {
            await engine.shutdown()
            throw error
        }
        if shutdown { await engine.shutdown() }
    }

    private static let names = Synchronized(0)

    func job(_ script: String, type: ScriptType = .bash, limits: [String] = [],
             concurrency: ConcurrencyRule = .forbid) async throws -> Job {
        let n = Self.names.next()
        return try await store.createJob(NewJob(name: "job-\(n)-\(UUID().uuidString.prefix(6))", scriptType: type,
                                                scriptContent: script, limits: limits, concurrency: concurrency))
    }

    func waitStatus(_ id: Int64, _ status: ExecutionStatus, timeout: Duration = .seconds(20)) async throws -> Execution {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let e = try await store.execution(id: id), e.status == status { return e }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw WaitError(what: "execution \(id) never became \(status.rawValue)")
    }

    /// Waits until the execution has left PENDING (it may have finished already).
    func waitStarted(_ id: Int64, timeout: Duration = .seconds(20)) async throws -> Execution {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let e = try await store.execution(id: id), e.status != .pending { return e }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw WaitError(what: "execution \(id) never started")
    }

    func waitFinal(_ id: Int64, timeout: Duration = .seconds(30)) async throws -> Execution {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let e = try await store.execution(id: id), e.status.isFinal { return e }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw WaitError(what: "execution \(id) never finished")
    }

    struct WaitError: Error, CustomStringConvertible { var what: String; var description: String { what } }
}

/// A counter shared by tests.
final class Synchronized: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int
    init(_ value: Int) { self.value = value }
    func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
}
