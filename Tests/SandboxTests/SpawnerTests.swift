import ConfineTestSupport
import Foundation
import Glibc
import Sandbox
import Synchronization
import Testing

/// Sandboxes are born from the spawner, not from this process: what a sandbox sees of its
/// pid 1 and of this process's memory, the per-user kernel objects it may hold, its session,
/// and a spawner that dies.
@Suite("Spawner", .enabled(if: TestSupport.canSandbox))
struct SpawnerTests {
    /// A run started in the background whose stdout can be awaited.
    final class Background: Sendable {
        let handle: RunHandle
        private let sink: Sink

        final class Sink: Sendable {
            let bytes = Mutex<[UInt8]>([])
        }

        init(_ sandbox: Sandbox, _ request: RunRequest) throws {
            var request = request
            let sink = Sink()
            request.onOutput = { chunk in
                if chunk.stream == .stdout { sink.bytes.withLock { $0 += chunk.bytes } }
            }
            self.sink = sink
            handle = try sandbox.start(request)
        }

        var stdout: String { sink.bytes.withLock { String(decoding: $0, as: UTF8.self) } }

        /// Waits (at most 30 s) until stdout holds `marker`; false if it never does.
        func wait(for marker: String) async throws -> Bool {
            for _ in 0..<600 {
                if stdout.contains(marker) { return true }
                try await Task.sleep(for: .milliseconds(50))
            }
            return false
        }
    }

    static func python(_ source: String) -> RunRequest {
        let file = SandboxFile(path: "/sandbox/main.py", contents: Array(source.utf8))
        return RunRequest(policy: try! TestSupport.policy(), command: ["/usr/bin/python3", "/sandbox/main.py"], files: [file])
    }

    @Test("pid 1 of a sandbox is the spawner's small init: its command line and memory, not this process's")
    func initIsTheSpawners() async throws {
        let r = try await TestSupport.bash("tr '\\0' ' ' < /proc/1/cmdline; echo; grep -E '^VmRSS:' /proc/1/status")
        #expect(r.verdict == .exited, "\(r.summary)")
        let lines = r.out.split(separator: "\n").map(String.init)
        try #require(lines.count == 2, "\(r.out)")
        #expect(lines[0].contains("confine-spawner"), "pid 1 is \(lines[0])")
        let ownName = URL(fileURLWithPath: CommandLine.arguments[0]).lastPathComponent
        #expect(!lines[0].contains(ownName), "pid 1 shows this process's command line: \(lines[0])")
        let rssKB = Int(lines[1].split(whereSeparator: \.isWhitespace).dropFirst().first ?? "") ?? Int.max
        let ownKB = ProcessMemory.statusKB(getpid(), "VmRSS") ?? 0
        // About 1.6 MB; up to its whole mapping (15 MB) when another test of this suite reads
        // every live init's memory through /proc/PID/mem at the same time. The server: hundreds.
        #expect(rssKB < 32 * 1024, "init's resident memory is \(rssKB) kB")
        #expect(rssKB * 4 < ownKB, "init (\(rssKB) kB) is not much smaller than this process (\(ownKB) kB)")
    }

    @Test("A canary in this process's memory is nowhere in a live init's memory (read through /proc/PID/mem)")
    func noParentMemoryInInit() async throws {
        let sandbox = try TestSupport.sandbox(warmPoolSize: 0)  // an init made after the canary exists
        defer { sandbox.shutdown() }
        let canary = Array("confine-canary-\(UUID().uuidString)-\(UUID().uuidString)".utf8)
        // The marker is in this run's argv: init holds it (it received the run), so finding it
        // proves the memory of the right init was read.
        let marker = "confine-marker-\(UUID().uuidString)"
        var policy = try TestSupport.policy()
        policy.limits.wallTimeMs = 120_000
        let run = try Background(sandbox, RunRequest(policy: policy, command: ["/bin/bash", "-c", "echo ready; sleep 100 # \(marker)"]))
        defer { run.handle.cancel() }
        try #require(try await run.wait(for: "ready"), "the run never started: \(run.stdout)")
        var ours: Int32?
        for pid in ProcessMemory.sandboxInits(of: getpid()) {
            guard let held = await ProcessMemory.holding(pid, [Array(marker.utf8), canary]) else { continue }
            if held[0] { ours = pid }
            #expect(!held[1], "init \(pid) holds this process's canary")
        }
        #expect(ours != nil, "no init holding the run's marker was found among this process's children")
        withExtendedLifetime(canary) {}
    }

    /// Creates inotify instances, POSIX message queues and queued signals until each is refused,
    /// prints the counts and the errnos, then holds them.
    static let hoarder = """
        import ctypes, os, signal, sys, time
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mq_open.restype = ctypes.c_int
        def count(make, limit):
            n = 0
            while n < limit:
                if make(n) < 0:
                    return n, ctypes.get_errno()
                n += 1
            return n, 0
        inotify = count(lambda n: libc.inotify_init1(0), 70000)
        mq = count(lambda n: libc.mq_open(b"/confine-%d" % n, os.O_CREAT | os.O_RDWR, 0o600, None), 70000)
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGRTMIN])
        # sigqueue, not kill: kill() of a realtime signal past the limit is still "sent".
        signals = count(lambda n: libc.sigqueue(os.getpid(), signal.SIGRTMIN, ctypes.c_long(n)), 5000000)
        print("held inotify %d %d mq %d %d signals %d %d" % (inotify + mq + signals), flush=True)
        time.sleep(60)
        """

    /// What the hoarder reported: counts and errnos per kind.
    static func held(_ output: String) -> [String: (count: Int, errno: Int)] {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("held ") }) else { return [:] }
        let words = line.split(separator: " ").dropFirst().map(String.init)
        var result: [String: (Int, Int)] = [:]
        var i = 0
        while i + 2 < words.count {
            result[words[i]] = (Int(words[i + 1]) ?? -1, Int(words[i + 2]) ?? -1)
            i += 3
        }
        return result
    }

    /// Host root, in a process of its own: one inotify instance, one message queue, one queued signal.
    static func hostRootCanCreate() throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", """
            import ctypes, os, signal
            libc = ctypes.CDLL(None, use_errno=True)
            out = []
            fd = libc.inotify_init1(0)
            out.append("inotify " + ("ok" if fd >= 0 else os.strerror(ctypes.get_errno())))
            name = b"/confine-host-%d" % os.getpid()
            q = libc.mq_open(name, os.O_CREAT | os.O_RDWR, 0o600, None)
            out.append("mq " + ("ok" if q >= 0 else os.strerror(ctypes.get_errno())))
            if q >= 0: libc.mq_unlink(name)
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGRTMIN])
            r = libc.sigqueue(os.getpid(), signal.SIGRTMIN, ctypes.c_long(1))
            out.append("signal " + ("ok" if r == 0 else os.strerror(ctypes.get_errno())))
            print(", ".join(out))
            """]
        let pipe = Pipe()
        process.standardOutput = pipe
        try ProcessLaunch.run(process)
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("Per-user kernel objects: each sandbox has its own ceilings, and host root keeps its own while a sandbox holds all it can")
    func kernelObjectCeilings() async throws {
        // 1. Under the default policy a sandbox holds exactly its ceilings, and another
        // sandbox can still make each kind of object meanwhile.
        let first = try Background(TestSupport.sandbox, Self.python(Self.hoarder))
        try #require(try await first.wait(for: "held "), "the hoarder never reported: \(first.stdout)")
        var held = Self.held(first.stdout)
        let limits = try TestSupport.policy().limits
        #expect(held["inotify"]?.count == limits.inotifyInstances, "\(first.stdout)")
        #expect(held["signals"]?.count == limits.pendingSignals, "\(first.stdout)")
        #expect((held["mq"]?.count ?? 0) >= 1, "\(first.stdout)")
        let second = try await TestSupport.python("""
            import ctypes, os, signal
            libc = ctypes.CDLL(None, use_errno=True)
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGRTMIN])
            print([libc.inotify_init1(0) >= 0, libc.mq_open(b"/q", os.O_CREAT | os.O_RDWR, 0o600, None) >= 0,
                   libc.sigqueue(os.getpid(), signal.SIGRTMIN, ctypes.c_long(1)) == 0])
            """)
        #expect(second.verdict == .exited && second.exitCode == 0, "\(second.summary) \(second.err)")
        #expect(second.out == "[True, True, True]\n")
        first.handle.cancel()
        _ = await first.handle.result()

        // 2. With ceilings as high as a policy may set them, what stops a sandbox is the
        // per-user limit of the user owning its namespace — which must not be host root.
        var request = Self.python(Self.hoarder)
        // (rlimits no higher than this host's hard limits: raising those needs CAP_SYS_RESOURCE.)
        func hard(_ resource: Int32) -> UInt64 {
            var limit = rlimit()
            getrlimit(__rlimit_resource_t(UInt32(resource)), &limit)
            return min(UInt64(limit.rlim_max), 1 << 30)
        }
        request.policy.limits.inotifyInstances = 65_536
        request.policy.limits.messageQueueBytes = hard(12)  // RLIMIT_MSGQUEUE
        request.policy.limits.pendingSignals = Int(min(hard(11), 4_194_304))  // RLIMIT_SIGPENDING
        request.policy.limits.openFiles = Int(min(hard(7), 65_536))  // RLIMIT_NOFILE
        request.policy.limits.wallTimeMs = 120_000
        request.policy.limits.cpuTimeMs = 60_000
        let hoarder = try Background(TestSupport.sandbox, request)
        try #require(try await hoarder.wait(for: "held "), "the hoarder never reported: \(hoarder.stdout)")
        held = Self.held(hoarder.stdout)
        for kind in ["inotify", "mq", "signals"] {
            #expect((held[kind]?.count ?? 0) >= 1, "the sandbox could not hold any \(kind): \(hoarder.stdout)")
            #expect((held[kind]?.errno ?? 0) != 0, "the sandbox's \(kind) were never refused: \(hoarder.stdout)")
        }
        #expect(try Self.hostRootCanCreate() == "inotify ok, mq ok, signal ok")
        hoarder.handle.cancel()
        _ = await hoarder.handle.result()
    }

    @Test("The sandbox's user namespace carries the policy's inotify ceilings and allows no new namespace of any kind")
    func userNamespaceCeilings() async throws {
        let r = try await TestSupport.bash("cd /proc/sys/user && for f in max_inotify_instances max_inotify_watches max_user_namespaces max_net_namespaces max_mnt_namespaces max_pid_namespaces; do printf '%s=%s\\n' $f $(cat $f); done") {
            $0.limits.inotifyInstances = 7
            $0.limits.inotifyWatches = 99
        }
        #expect(r.verdict == .exited, "\(r.summary) \(r.err)")
        #expect(r.out == "max_inotify_instances=7\nmax_inotify_watches=99\nmax_user_namespaces=0\nmax_net_namespaces=0\nmax_mnt_namespaces=0\nmax_pid_namespaces=0\n", "\(r.out)")
    }

    @Test("The program runs in a session of its own (a terminal's Ctrl-C cannot reach it)")
    func ownSession() async throws {
        let r = try await TestSupport.python("import os; print(os.getsid(0) == os.getpid(), os.getpgrp() == os.getpid())")
        #expect(r.out == "True True\n", "\(r.summary) \(r.err)")
    }

    @Test("A spawner killed with SIGKILL is restarted: later runs go on, and its status says what happened")
    func spawnerRestarts() async throws {
        let sandbox = try TestSupport.sandbox(warmPoolSize: 0)
        defer { sandbox.shutdown() }
        let policy = try TestSupport.policy()
        let before = sandbox.spawnerStatus
        #expect(before.isRunning && before.restarts == 0, "\(before)")
        let pid = try #require(before.pid)
        #expect(kill(pid, SIGKILL) == 0)
        // Launches while it is down wait for the new one; one in flight fails naming it.
        var results: [RunResult] = []
        for _ in 0..<5 { results.append(try await sandbox.run(RunRequest(policy: policy, command: ["/bin/true"]))) }
        for r in results where r.verdict != .exited {
            #expect(r.verdict == .setupFailed && (r.setupFailure?.description.contains("spawner") ?? false), "\(r.summary)")
        }
        #expect(results.last?.verdict == .exited, "\(results.last?.summary ?? "")")
        let after = sandbox.spawnerStatus
        #expect(after.isRunning && after.restarts >= 1 && after.pid != pid, "\(after)")
        #expect(after.lastExit?.contains("SIGKILL") == true, "\(after)")
    }

    @Test("Launches racing a spawner's death either run or fail naming the spawner; none is lost")
    func launchesAcrossADeath() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let policy = try TestSupport.policy()
        let pid = try #require(sandbox.spawnerStatus.pid)
        let handles = try (0..<24).map { i -> RunHandle in
            if i == 8 { kill(pid, SIGKILL) }
            return try sandbox.start(RunRequest(policy: policy, command: ["/bin/true"]))
        }
        var exited = 0
        for handle in handles {
            let r = await handle.result()
            if r.verdict == .exited { exited += 1; continue }
            #expect(r.verdict == .setupFailed && (r.setupFailure?.description.contains("spawner") ?? false), "\(r.summary)")
        }
        #expect(exited >= 16, "only \(exited) of 24 ran")
        #expect(sandbox.spawnerStatus.restarts >= 1)
    }

    @Test("A spawner that cannot start makes the Sandbox fail, saying why")
    func spawnerMissing() throws {
        var configuration = SandboxConfiguration()
        configuration.spawnerPath = "/nonexistent/confine-spawner"
        #expect {
            _ = try Sandbox(configuration: configuration)
        } throws: { error in
            "\(error)".contains("/nonexistent/confine-spawner") && "\(error)".contains("ENOENT")
        }
        for id in [SandboxConfiguration.defaultHostIDFirst, SandboxConfiguration.defaultHostIDFirst + 65_535, 65534] {
            configuration = SandboxConfiguration()
            configuration.spawnerUID = id
            #expect {
                _ = try Sandbox(configuration: configuration)
            } throws: { error in
                "\(error)".contains("spawner_uid (\(id))") && "\(error)".contains("must differ")
            }
        }
    }
}
