import Foundation
import Glibc
@testable import Sandbox
import Testing

/// The cgroup backends. v1 runs for real where the host has it; v2 runs for real where the
/// host has a pure cgroup2 hierarchy, and always against a temporary directory laid out as one.
@Suite("Cgroups")
struct CgroupTests {
    /// A directory shaped like a cgroup2 mount: interface files that the kernel would create.
    static func fakeCgroup2() throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("fake-cgroup2-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try "cpuset cpu io memory hugetlb pids rdma misc\n".write(toFile: root + "/cgroup.controllers", atomically: false, encoding: .utf8)
        try "".write(toFile: root + "/cgroup.subtree_control", atomically: false, encoding: .utf8)
        // What the kernel would create in the new `confine` cgroup.
        try FileManager.default.createDirectory(atPath: root + "/confine", withIntermediateDirectories: true)
        try "cpu memory pids\n".write(toFile: root + "/confine/cgroup.controllers", atomically: false, encoding: .utf8)
        try "".write(toFile: root + "/confine/cgroup.subtree_control", atomically: false, encoding: .utf8)
        try "100\n".write(toFile: root + "/confine/cpu.weight", atomically: false, encoding: .utf8)
        return root
    }

    /// A run cgroup of this host's real hierarchy, named for this test alone; the caller destroys it.
    static func realRun(_ backend: any CgroupBackend) throws -> (name: String, run: any RunCgroup) {
        let name = "test-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        return (name, try backend.create(name: name, limits: CgroupLimits(memoryBytes: 32 << 20, processes: 8, cpuQuota: 1, cpuWeight: 50)))
    }

    /// SIGKILLs and reaps a child of this process.
    static func end(_ pid: pid_t) {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    static func populateRun(_ dir: String) throws {
        let files = ["memory.max": "max\n", "memory.swap.max": "max\n", "pids.max": "max\n",
                     "cpu.max": "max 100000\n", "cpu.weight": "100\n", "cgroup.procs": "",
                     "cpu.stat": "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\n",
                     "memory.peak": "52428800\n", "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"]
        for (name, content) in files { try content.write(toFile: dir + "/" + name, atomically: false, encoding: .utf8) }
    }

    @Test("CgroupV2 on a temporary directory laid out as cgroup2: controllers enabled, limits written, stats read")
    func v2OnTemporaryDirectory() throws {
        let root = try Self.fakeCgroup2()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let backend = try CgroupV2(root: root, parent: "confine", groupWeight: 25)
        #expect(try String(contentsOfFile: root + "/cgroup.subtree_control", encoding: .utf8) == "+cpu +memory +pids")
        #expect(try String(contentsOfFile: root + "/confine/cpu.weight", encoding: .utf8) == "25", "all runs weigh less than the server")
        #expect(try String(contentsOfFile: root + "/confine/cgroup.subtree_control", encoding: .utf8) == "+cpu +memory +pids")
        // The kernel creates interface files in a new cgroup; this stand-in does it by hand.
        try FileManager.default.createDirectory(atPath: root + "/confine/run-1", withIntermediateDirectories: true)
        try Self.populateRun(root + "/confine/run-1")
        let run = try backend.create(name: "run-1", limits: CgroupLimits(memoryBytes: 64 << 20, processes: 16, cpuQuota: 0.5, cpuWeight: 50))
        func read(_ f: String) throws -> String { try String(contentsOfFile: root + "/confine/run-1/" + f, encoding: .utf8) }
        #expect(try read("memory.max") == "67108864")
        #expect(try read("memory.swap.max") == "0")
        #expect(try read("pids.max") == "16")
        #expect(try read("cpu.max") == "50000 100000")
        #expect(try read("cpu.weight") == "50")
        try run.join(pid: 4242)
        #expect(try read("cgroup.procs") == "4242")
        let stats = run.stats()
        #expect(stats.cpuUsageNs == 1_234_567_000)
        #expect(stats.memoryPeakBytes == 52_428_800)
        #expect(stats.oomKills == 1)
        #expect(backend.existingRuns() == ["run-1"])
    }

    @Test("CgroupV2 on a temporary directory: no quota writes max; errors name the file and errno")
    func v2Errors() throws {
        let root = try Self.fakeCgroup2()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let backend = try CgroupV2(root: root, parent: "confine")
        try FileManager.default.createDirectory(atPath: root + "/confine/run-2", withIntermediateDirectories: true)
        try Self.populateRun(root + "/confine/run-2")
        _ = try backend.create(name: "run-2", limits: CgroupLimits(memoryBytes: 1 << 20, processes: 1, cpuQuota: nil, cpuWeight: 100))
        #expect(try String(contentsOfFile: root + "/confine/run-2/cpu.max", encoding: .utf8) == "max 100000")
        // A hierarchy that cannot be written is reported with the file and the errno.
        #expect(throws: CgroupError.self) { try CgroupV2(root: "/proc/no-such-cgroup-root", parent: "confine") }
        do { _ = try CgroupV2(root: "/proc/no-such-cgroup-root", parent: "confine") } catch {
            #expect(error.description.contains("/proc/no-such-cgroup-root/confine"))
            #expect(error.description.contains("ENOENT"))
        }
    }

    @Test("A counter file's number: blanks around it allowed, anything else (max, a sign, two numbers, overflow) is no number")
    func counterNumbers() {
        #expect(CgroupFile.number("123\n") == 123)
        #expect(CgroupFile.number("  42 \t\r\n") == 42)
        #expect(CgroupFile.number("0") == 0)
        #expect(CgroupFile.number("18446744073709551615\n") == UInt64.max)
        for text in ["", "\n", "max\n", "-1", "+1", "12 3", "1.5", "18446744073709551616"] {
            #expect(CgroupFile.number(text) == nil, "\(text.debugDescription)")
        }
    }

    @Test("v1 weight maps onto shares")
    func sharesMapping() throws {
        #expect(CgroupV1.shares(weight: 100) == 1024)
        #expect(CgroupV1.shares(weight: 50) == 512)
        #expect(CgroupV1.shares(weight: 1) == 10)
        #expect(CgroupV1.shares(weight: 10000) == 102_400)
        // For real on this host, in a parent cgroup of its own (the shared one is in use): the
        // group weight lands in cpu.shares.
        if let cgroups = TestSupport.sandbox.cgroups, cgroups.version == .v1,
           let shared = cgroups.baseDirectories.first(where: { FileManager.default.fileExists(atPath: $0 + "/cpu.shares") }) {
            let mount = String(shared.dropLast("/confine".count))
            let parent = "confine-weight-\(getpid())"
            _ = try CgroupV1(controllerMounts: ["cpu": mount], parent: parent, groupWeight: 25)
            defer { rmdir(mount + "/" + parent) }
            #expect(try String(contentsOfFile: mount + "/" + parent + "/cpu.shares", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines) == "256")
        } else {
            print("SKIP the real v1 group weight check: this host's runs are not in cgroup v1")
        }
    }

    @Test("The real hierarchy of this host: a run cgroup is created with its limits and removed",
          .enabled(if: TestSupport.canSandbox))
    func realHierarchy() throws {
        let backend = try CgroupDetection.detect(parent: "confine")
        print("cgroup backend on this host: \(backend.version.rawValue)")
        let name = "test-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        let run = try backend.create(name: name, limits: CgroupLimits(memoryBytes: 32 << 20, processes: 8, cpuQuota: 1, cpuWeight: 50))
        #expect(backend.existingRuns().contains(name))
        let stats = run.stats()
        #expect(stats.oomKills == 0)
        try run.destroy()
        #expect(!backend.existingRuns().contains(name))
    }

    @Test("The real hierarchy: a run cgroup's process list and its init-alone check follow processes as they join and end (v1 serves a kept cgroup.procs descriptor a cached list)",
          .enabled(if: TestSupport.canSandbox))
    func processListFollows() throws {
        let (_, run) = try Self.realRun(try CgroupDetection.detect(parent: "confine"))
        defer { try? run.destroy() }
        let sleepArgs = [strdup("/bin/sleep"), strdup("600"), nil]
        defer { sleepArgs.forEach { free($0) } }
        let end = Self.end
        func sleeper() throws -> pid_t {
            var pid: pid_t = 0
            try #require(posix_spawn(&pid, "/bin/sleep", nil, nil, sleepArgs, environ) == 0)
            do { try run.join(pid: pid) } catch {
                end(pid)
                throw error
            }
            return pid
        }
        let first = try sleeper()
        defer { end(first) }
        #expect(run.processes() == [first])
        #expect(run.holdsOnly(first))
        // Within the second a kept descriptor would serve the list it read first.
        let second = try sleeper()
        #expect(run.processes().sorted() == [first, second].sorted())
        #expect(!run.holdsOnly(first))
        end(second)
        #expect(run.processes() == [first])
        #expect(run.holdsOnly(first))
    }

    @Test("The real v1 hierarchy: an unprivileged process moves itself into a run cgroup, every hierarchy, through the tasks files the server opened (the opener's rights are checked)",
          .enabled(if: TestSupport.canSandbox))
    func selfJoinThroughOpenedFiles() throws {
        let backend = try CgroupDetection.detect(parent: "confine")
        guard backend.version == .v1 else {
            print("SKIP self-join test: this host's runs are in cgroup \(backend.version.rawValue) (inits are born in their cgroup or moved by pid there)")
            return
        }
        let (name, run) = try Self.realRun(backend)
        defer { try? run.destroy() }
        let files = try #require(try run.selfJoinFiles())
        #expect(files.count == Set(backend.baseDirectories).count, "one file a hierarchy: \(files.map(\.path))")
        #expect(files.allSatisfy { $0.path.hasSuffix("/\(name)/tasks") }, "\(files.map(\.path))")

        // As nobody (no right to these files of its own), with the files as 3, 4, ...: it writes
        // "0" to each, then waits.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var writes: [String] = []
        for (i, file) in files.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, file.fd, Int32(3 + i))
            writes.append("printf 0 >&\(3 + i) || exit 3;")
        }
        let script = writes.joined(separator: " ") + " exec sleep 600"
        let words = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c", script]
        let args: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { args.forEach { free($0) } }
        var pid: pid_t = 0
        try #require(posix_spawn(&pid, words[0], &actions, nil, args, environ) == 0)
        defer { Self.end(pid) }
        var joined = false
        for _ in 0..<500 where !joined {
            joined = run.processes() == [pid]
            if !joined { usleep(10_000) }
        }
        #expect(joined, "the process is in the run cgroup: \(run.processes())")
        let own = try String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)
        for controller in ["memory", "pids", "cpu", "cpuacct"] {
            let line = own.split(separator: "\n").first { $0.split(separator: ":")[1].split(separator: ",").contains(Substring(controller)) }
            #expect(line?.hasSuffix("/\(name)") == true, "\(controller): \(line ?? "none") in\n\(own)")
        }
        let uid = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8).split(separator: "\n").first { $0.hasPrefix("Uid:") }
        #expect(uid?.split(whereSeparator: \.isWhitespace).dropFirst().first == "65534", "it ran unprivileged: \(uid ?? "")")
    }

    /// A hierarchy that is only this: each run hands init `files` to move itself in through.
    final class StandInCgroups: CgroupBackend {
        final class Run: RunCgroup {
            let files: [(path: String, fd: Int32)]
            init(files: [(path: String, fd: Int32)]) { self.files = files }
            func join(pid: pid_t) throws(CgroupError) {}
            func apply(_ limits: CgroupLimits) throws(CgroupError) {}
            func startCounting() {}
            func stats() -> CgroupStats { CgroupStats(cpuUsageNs: nil, memoryPeakBytes: nil, oomKills: 0) }
            func cpuUsageNs() -> UInt64? { nil }
            func processes() -> [pid_t] { [] }
            func killAll() {}
            func finish() throws(CgroupError) {}
            func destroy() throws(CgroupError) {}
            func openDirectory() throws(CgroupError) -> Int32? { nil }
            func selfJoinFiles() throws(CgroupError) -> [(path: String, fd: Int32)]? { files }
        }
        let version = CgroupVersion.v1
        let files: [(path: String, fd: Int32)]
        init(files: [(path: String, fd: Int32)]) { self.files = files }
        var baseDirectories: [String] { [] }
        func create(name: String, limits: CgroupLimits) throws(CgroupError) -> any RunCgroup { Run(files: files) }
        func existingRuns() -> [String] { [] }
        func remove(name: String) throws(CgroupError) {}
        func removeIdle() {}
    }

    @Test("A cgroup file init cannot move itself in through: setup_failed naming that file and the errno, and the program never runs",
          .enabled(if: TestSupport.canSandbox))
    func selfJoinFailureNamesTheFile() async throws {
        let writable = open("/dev/null", O_WRONLY | O_CLOEXEC), readOnly = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(writable); close(readOnly) }
        try #require(writable >= 0 && readOnly >= 0)
        let files = [(path: "/stand-in/memory/tasks", fd: writable), (path: "/stand-in/pids/tasks", fd: readOnly)]
        var configuration = SandboxConfiguration()
        configuration.warmPoolSize = 0
        let sandbox = try Sandbox(configuration: configuration) { StandInCgroups(files: files) }
        defer { sandbox.shutdown() }
        let result = try await sandbox.run(RunRequest(policy: try TestSupport.policy(), command: ["/bin/echo", "ran"]))
        #expect(result.verdict == .setupFailed, "\(result.summary)")
        #expect(result.setupFailure == SetupFailure(stage: "move into the run's cgroup", subject: "/stand-in/pids/tasks", errno: EBADF),
                "\(String(describing: result.setupFailure))")
        #expect(result.stdout.isEmpty, "the program ran: \(result.out)")
    }
}
