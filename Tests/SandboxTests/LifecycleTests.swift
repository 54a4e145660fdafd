import ConfineTestSupport
import Foundation
import Glibc
@testable import Sandbox
import Synchronization
import Testing

/// Setup failures, cancellation, many runs at once, and nothing left behind.
@Suite("Run lifecycle", .enabled(if: TestSupport.canSandbox))
struct LifecycleTests {
    @Test("A missing program is a setup failure at execve, with its errno")
    func missingProgram() async throws {
        let p = try TestSupport.policy()
        let r = try await TestSupport.sandbox.run(RunRequest(policy: p, command: ["/usr/bin/no-such-program"]))
        #expect(r.verdict == .setupFailed)
        let failure = try #require(r.setupFailure)
        #expect(failure.stage == "execve")
        #expect(failure.errno == ENOENT)
        #expect(failure.description == "execve /usr/bin/no-such-program: ENOENT (No such file or directory)")
    }

    @Test("A run reports how long its launch took; a sandbox that never took its run reports none")
    func launchTime() async throws {
        let p = try TestSupport.policy()
        let ran = try await TestSupport.sandbox.run(RunRequest(policy: p, command: ["/bin/true"]))
        #expect(ran.verdict == .exited, "\(ran.summary)")
        #expect(ran.launchMicros > 0)
        let failed = try await TestSupport.sandbox.run(RunRequest(policy: p, command: ["/usr/bin/no-such-program"]))
        #expect(failed.verdict == .setupFailed)
        #expect(failed.launchMicros == 0)
    }

    @Test("A program name is looked up in the sandbox's PATH")
    func pathLookup() async throws {
        let p = try TestSupport.policy()
        let r = try await TestSupport.sandbox.run(RunRequest(policy: p, command: ["python3", "-c", "print(6*7)"]))
        #expect(r.out == "42\n", "\(r.summary) \(r.err)")
    }

    @Test("A mount that fails names the mount and the errno")
    func mountFailure() async throws {
        var p = try TestSupport.policy()
        // A file bound where a directory already exists cannot be mounted.
        p.filesystem.readOnly.append(BindMount(source: "/etc/hostname", target: "/usr/share"))
        let r = try await TestSupport.sandbox.run(RunRequest(policy: p, command: ["/bin/true"]))
        #expect(r.verdict == .setupFailed, "\(r.summary)")
        let failure = try #require(r.setupFailure)
        #expect(failure.stage == "mount")
        #expect(failure.subject?.contains("/usr/share") == true, "\(failure)")
        #expect(failure.errno != 0)
    }

    @Test("A missing non-optional bind source is refused before clone, with its path")
    func missingBindSource() async throws {
        var p = try TestSupport.policy()
        p.filesystem.readOnly.append(BindMount(source: "/no/such/dir"))
        let r = try await TestSupport.sandbox.run(RunRequest(policy: p, command: ["/bin/true"]))
        #expect(r.verdict == .setupFailed)
        #expect(r.setupFailure?.description == "mount /no/such/dir: ENOENT (No such file or directory)")
    }

    @Test("Cancelling a running program kills it quickly")
    func cancelRunning() async throws {
        let p = try TestSupport.policy()
        let chunks = Chunks()
        let handle = try TestSupport.sandbox.start(RunRequest(policy: p, command: ["/bin/bash", "-c", "echo started; sleep 30"],
                                                              onOutput: { chunks.add($0) }))
        // Cancelled once it is running for sure (it said so), however slow the machine.
        for _ in 0..<500 where chunks.all.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        handle.cancel()
        let r = await handle.result()
        #expect(r.verdict == .cancelled)
        // Killed, not ended by its 30 s sleep (latency is measured by benchmarks, not tests).
        #expect(r.wallMs < 15_000, "wall \(r.wallMs) ms")
        #expect(r.out == "started\n")
    }

    @Test("Cancelling the calling task cancels the run")
    func cancelTask() async throws {
        let p = try TestSupport.policy()
        let task = Task { try await TestSupport.sandbox.run(RunRequest(policy: p, command: ["/bin/sleep", "30"])) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        let r = try await task.value
        #expect(r.verdict == .cancelled)
    }

    @Test("32 runs at once all complete correctly")
    func concurrentRuns() async throws {
        var policy = try TestSupport.policy()
        policy.limits.wallTimeMs = TestTimeScale.scaled(policy.limits.wallTimeMs)
        let p = policy
        let results = try await withThrowingTaskGroup(of: (Int, RunResult).self) { group in
            for i in 0..<32 {
                group.addTask {
                    (i, try await TestSupport.sandbox.run(RunRequest(policy: p, command: ["/bin/bash", "-c", "sleep 0.2; echo \(i)"])))
                }
            }
            var all: [(Int, RunResult)] = []
            for try await r in group { all.append(r) }
            return all
        }
        #expect(results.count == 32)
        for (i, r) in results {
            #expect(r.verdict == .exited && r.exitCode == 0, "run \(i): \(r.summary)")
            #expect(r.out == "\(i)\n")
        }
    }

    @Test("Live output arrives as it is produced, in order, up to the cap")
    func liveOutput() async throws {
        var p = try TestSupport.policy()
        p.limits.stdoutBytes = 10
        let chunks = Chunks()
        let r = try await TestSupport.sandbox.run(RunRequest(
            policy: p, command: ["/bin/bash", "-c", "echo abc; sleep 0.3; echo defghijklmnop"],
            onOutput: { chunks.add($0) }))
        let received = chunks.all
        #expect(received.count >= 2, "chunks: \(received.count)")
        #expect(received.flatMap(\.bytes) == r.stdout)
        #expect(r.stdout == Array("abc\ndefghi".utf8))
        #expect(received.first?.offset == 0)
    }

    @Test("keepOutput false: the chunks carry the output up to the cap, the result keeps none of it but counts all")
    func outputNotKept() async throws {
        var p = try TestSupport.policy()
        p.limits.stdoutBytes = 100_000
        let chunks = Chunks()
        let r = try await TestSupport.sandbox.run(RunRequest(
            policy: p, command: ["/bin/bash", "-c", "head -c 300000 /dev/zero | tr '\\0' x; echo oops >&2"],
            onOutput: { chunks.add($0) }, keepOutput: false))
        let received = chunks.all
        #expect(r.stdout.isEmpty && r.stderr.isEmpty, "\(r.summary)")
        #expect(r.stdoutBytes == 300_000 && r.stdoutTruncated && r.stderrBytes == 5 && !r.stderrTruncated)
        let stdout = received.filter { $0.stream == .stdout }
        #expect(stdout.flatMap(\.bytes) == Array(repeating: UInt8(ascii: "x"), count: 100_000), "the first cap's worth, once")
        #expect(zip(stdout, stdout.dropFirst()).allSatisfy { $0.offset + UInt64($0.bytes.count) == $1.offset }, "consecutive")
        #expect(received.filter { $0.stream == .stderr }.flatMap(\.bytes) == Array("oops\n".utf8))
    }

    @Test("pauseOutput: while it says so nothing is read (the program waits on its pipe), deadlines still apply")
    func pausedOutput() async throws {
        var p = try TestSupport.policy()
        p.limits.stdoutBytes = 4 << 20
        let chunks = Chunks()
        let paused = PauseFlag()
        let writer = ["/bin/bash", "-c", "head -c 1000000 /dev/zero"]
        let request = RunRequest(policy: p, command: writer, onOutput: { chunks.add($0) }, keepOutput: false,
                                 pauseOutput: { paused.isSet })
        async let run = TestSupport.sandbox.run(request)
        try await Task.sleep(for: .milliseconds(300))
        #expect(chunks.all.isEmpty, "nothing is read while paused")
        paused.clear()
        let r = try await run
        #expect(r.verdict == .exited && r.exitCode == 0 && r.stdoutBytes == 1_000_000, "\(r.summary)")
        #expect(chunks.all.reduce(0) { $0 + $1.bytes.count } == 1_000_000)

        // Paused for good: the wall deadline ends the run all the same, and what waits is read then.
        p.limits.wallTimeMs = 300
        let stuck = Chunks()
        let r2 = try await TestSupport.sandbox.run(RunRequest(
            policy: p, command: writer, onOutput: { stuck.add($0) }, keepOutput: false, pauseOutput: { true }))
        #expect(r2.verdict == .wallTimeout, "\(r2.summary)")
        // Every byte counted was handed over (how much the program wrote before the kill took
        // effect depends on the machine's load).
        #expect(stuck.all.reduce(0) { $0 + $1.bytes.count } == Int(r2.stdoutBytes))
    }

    @Test("A warm sandbox takes its run's own, tighter limits")
    func warmSandboxGetsRunLimits() async throws {
        let sandbox = try TestSupport.sandbox(warmPoolSize: 1)
        defer { sandbox.shutdown() }
        let p = try TestSupport.policy()
        let hog = ["/usr/bin/python3", "-c", "x = bytearray(100 << 20); print(len(x))"]
        // The first run builds the image's sandbox itself and leaves one warm for the next.
        let first = try await sandbox.run(RunRequest(policy: p, command: hog))
        #expect(first.verdict == .exited && first.out == "\(100 << 20)\n", "\(first.summary)")
        try await Task.sleep(for: .milliseconds(300))
        var tighter = LimitOverrides()
        try tighter.add(parsing: "memory=48MiB")
        let second = try await sandbox.run(RunRequest(policy: p, command: hog, overrides: tighter))
        #expect(second.verdict == .memoryLimit, "\(second.summary)")
        // And the one after gets the policy's limits back.
        try await Task.sleep(for: .milliseconds(300))
        let third = try await sandbox.run(RunRequest(policy: p, command: hog))
        #expect(third.verdict == .exited, "\(third.summary)")
    }

    @Test("The warm pool: refilled as runs end, and at once when a take leaves fewer than half of its size; never above it")
    func warmPoolRefillsWhenLow() async throws {
        let sandbox = try TestSupport.sandbox(warmPoolSize: 4)
        defer { sandbox.shutdown() }
        var p = try TestSupport.policy()
        p.limits.wallTimeMs = 120_000  // the runs below outlast every wait of the test
        func waitForReady(_ count: Int) async throws -> Bool {
            for _ in 0..<1000 where sandbox.warmSandboxCount != count { try await Task.sleep(for: .milliseconds(20)) }
            return sandbox.warmSandboxCount == count
        }
        // The first run builds its own sandbox; its end fills the image's pool.
        let first = try await sandbox.run(RunRequest(policy: p, command: ["/bin/true"]))
        #expect(first.verdict == .exited, "\(first.summary)")
        #expect(try await waitForReady(4), "ready: \(sandbox.warmSandboxCount)")
        // Runs that go on: the first two takes leave half or more, and the pool waits for a run's end.
        var handles: [RunHandle] = []
        defer { handles.forEach { $0.cancel() } }
        for left in [3, 2] {
            handles.append(try sandbox.start(RunRequest(policy: p, command: ["/bin/sleep", "120"])))
            #expect(sandbox.warmSandboxCount == left)
        }
        // The third leaves one: refilled while all three still run.
        handles.append(try sandbox.start(RunRequest(policy: p, command: ["/bin/sleep", "120"])))
        #expect(try await waitForReady(4), "ready: \(sandbox.warmSandboxCount)")
        try await Task.sleep(for: .milliseconds(300))
        #expect(sandbox.warmSandboxCount == 4)
        for handle in handles {
            handle.cancel()
            #expect(await handle.result().verdict == .cancelled)
        }
    }

    @Test("A run too large to send without waiting (arguments past a socket's buffer) is sent from the supervisor's thread, to a warm sandbox all the same")
    func largeRunToAWarmSandbox() async throws {
        let sandbox = try TestSupport.sandbox(warmPoolSize: 1)
        defer { sandbox.shutdown() }
        let p = try TestSupport.policy()
        let count = ["/bin/bash", "-c", "echo ${#1}", "count"]
        // The first run leaves one warm for the image; the next two take it, small then large.
        let first = try await sandbox.run(RunRequest(policy: p, command: count + ["x"]))
        #expect(first.verdict == .exited && first.out == "1\n", "\(first.summary)")
        try await Task.sleep(for: .milliseconds(300))
        let big = String(repeating: "a", count: 100_000)
        let large = try await sandbox.run(RunRequest(policy: p, command: count + [big]))
        #expect(large.verdict == .exited && large.out == "100000\n", "\(large.summary)")
        try await Task.sleep(for: .milliseconds(300))
        let after = try await sandbox.run(RunRequest(policy: p, command: count + ["xyz"]))
        #expect(after.verdict == .exited && after.out == "3\n", "\(after.summary)")
    }

    @Test("Recovery: a run cgroup a dead process left in one v1 hierarchy only (it died while removing them) is found and removed")
    func staleRunInOneHierarchyRemoved() throws {
        let backend = try CgroupDetection.detect(parent: "confine")
        guard backend.version == .v1, let pidsParent = backend.baseDirectories.first(where: { $0.contains("/pids") }) else {
            print("SKIP one-hierarchy leftover: this host's runs are not on cgroup v1")
            return
        }
        // Any Sandbox starting meanwhile (a `confine serve` of another test) removes such a
        // leftover too: a round where it vanished before this test looked is tried again.
        for round in 1...5 {
            let name = "\(Self.deadPid())-7"
            #expect(mkdir(pidsParent + "/" + name, 0o755) == 0)
            guard backend.existingRuns().contains(name) else {
                #expect(round < 5, "a directory in the pids hierarchy alone is a run (removed by another start five times?)")
                continue
            }
            Sandbox.removeStaleRuns(backend)
            #expect(!backend.existingRuns().contains(name))
            #expect(access(pidsParent + "/" + name, F_OK) != 0)
            return
        }
    }

    /// A pid that is surely gone: a child of ours, reaped.
    static func deadPid() -> pid_t {
        var pid: pid_t = 0
        let trueArgs = [strdup("/bin/true"), nil]
        defer { trueArgs.forEach { free($0) } }
        #expect(posix_spawn(&pid, "/bin/true", nil, nil, trueArgs, environ) == 0)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return pid
    }

    @Test("Recovery: a dead Confine process's leftover cgroup is emptied (its processes killed) and removed")
    func staleRunsRemoved() throws {
        // A backend of its own: the shared one may hand out a recycled cgroup under another name.
        let backend = try CgroupDetection.detect(parent: "confine")
        let sleepArgs = [strdup("/bin/sleep"), strdup("600"), nil]
        defer { sleepArgs.forEach { free($0) } }
        // Any Sandbox starting meanwhile (a `confine serve` of another test) may remove the
        // leftover while it is being made (ENOENT): such a round is tried again.
        var made: (name: String, orphan: pid_t)?
        for round in 1...5 where made == nil {
            let name = "\(Self.deadPid())-1"
            // An orphan of the dead server, still running in its sandbox's cgroup.
            var orphan: pid_t = 0
            #expect(posix_spawn(&orphan, "/bin/sleep", nil, nil, sleepArgs, environ) == 0)
            do {
                let leftover = try backend.create(name: name, limits: CgroupLimits(memoryBytes: 64 << 20, processes: 8, cpuQuota: nil,
                                                                                  cpuWeight: 50))
                try leftover.join(pid: orphan)
                made = (name, orphan)
            } catch {
                kill(orphan, SIGKILL)
                var status: Int32 = 0
                waitpid(orphan, &status, 0)
                Sandbox.removeStaleRuns(backend)  // what the half-made leftover left (its pid is dead)
                #expect(round < 5, "the leftover could not be made five times: \(error)")
            }
        }
        guard let (name, orphan) = made else { return }

        Sandbox.removeStaleRuns(backend)

        #expect(!backend.existingRuns().contains(name))
        var orphanStatus: Int32 = 0
        #expect(waitpid(orphan, &orphanStatus, 0) == orphan)
        #expect(orphanStatus & 0x7f == SIGKILL, "the orphan was killed (status \(orphanStatus))")
    }

    @Test("After runs and shutdown, no cgroup, warm sandbox or process of a Sandbox is left")
    func noLeftovers() async throws {
        var configuration = SandboxConfiguration()
        configuration.cgroupParent = "confine/test-\(UUID().uuidString.prefix(8))"
        configuration.warmPoolSize = 1
        let sandbox = try Sandbox(configuration: configuration)
        let p = try TestSupport.policy()
        let marker = "654.\(Int.random(in: 100...999))"
        for _ in 0..<3 {
            let r = try await sandbox.run(RunRequest(policy: p, command: ["/bin/bash", "-c", "(sleep \(marker) &); true"]))
            #expect(r.verdict == .exited)
        }
        try await Task.sleep(for: .milliseconds(200))  // let the pool prepare its warm sandbox
        let backend = try #require(sandbox.cgroups)
        #expect(!backend.existingRuns().isEmpty, "the warm sandbox and reusable cgroups exist before shutdown")
        sandbox.shutdown()
        #expect(backend.existingRuns().isEmpty, "\(backend.existingRuns())")
        #expect(TestSupport.hostProcesses(containing: "sleep \(marker)").isEmpty)
        for dir in backend.baseDirectories { #expect(rmdir(dir) == 0, "rmdir \(dir): errno \(errno)") }
    }

    @Test("The bare baseline runs the same command without isolation")
    func bareBaseline() async throws {
        let p = try TestSupport.policy()
        let r = await TestSupport.sandbox.runBare(command: ["/bin/sh", "-c", "echo $$"], policy: p)
        #expect(r.verdict == .exited)
        #expect((Int(r.out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 2)
    }
}

final class Chunks: @unchecked Sendable {
    private let lock = NSLock()
    private var chunks: [OutputChunk] = []
    func add(_ c: OutputChunk) { lock.lock(); chunks.append(c); lock.unlock() }
    var all: [OutputChunk] { lock.lock(); defer { lock.unlock() }; return chunks }
}

/// A flag the test clears while a run asks it.
final class PauseFlag: Sendable {
    private let value = Atomic<Bool>(true)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func clear() { value.store(false, ordering: .relaxed) }
}
