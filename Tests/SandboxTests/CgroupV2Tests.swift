import ConfineTestSupport
import Foundation
import Glibc
@testable import Sandbox
import Testing

/// cgroup v2 delegation (on directories laid out as cgroup2, everywhere) and the v2 backend on a
/// real cgroup2 hierarchy (where this process's runs are on one: `make test-cgroup2` boots a v2
/// kernel for that; elsewhere those tests say why they skip).
@Suite("Cgroup v2")
struct CgroupV2Tests {
    /// A directory laid out as a cgroup2 mount with `own` (e.g. "/system.slice/confine.service")
    /// holding `procs`; the true root has no cgroup.type, any other cgroup has one.
    static func fakeMount(own: String, procs: [pid_t], controllers: String = "cpu memory pids",
                          trueRoot: Bool = true, leaf: Bool = true) throws -> String {
        let mount = FileManager.default.temporaryDirectory.appendingPathComponent("fake-cgroup2-deleg-\(UUID().uuidString)").path
        let dir = mount + own
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "cpuset cpu io memory pids\n".write(toFile: mount + "/cgroup.controllers", atomically: false, encoding: .utf8)
        try "".write(toFile: mount + "/cgroup.subtree_control", atomically: false, encoding: .utf8)
        if !trueRoot { try "domain\n".write(toFile: mount + "/cgroup.type", atomically: false, encoding: .utf8) }
        if own != "/" && !own.isEmpty {
            try "domain\n".write(toFile: dir + "/cgroup.type", atomically: false, encoding: .utf8)
            try (controllers + "\n").write(toFile: dir + "/cgroup.controllers", atomically: false, encoding: .utf8)
            try "".write(toFile: dir + "/cgroup.subtree_control", atomically: false, encoding: .utf8)
        }
        try procs.map { "\($0)\n" }.joined().write(toFile: dir + "/cgroup.procs", atomically: false, encoding: .utf8)
        if leaf {
            // The kernel makes a new cgroup's files; this stand-in makes the leaf's beforehand.
            let server = (own == "/" ? mount : dir) + "/" + CgroupV2Delegation.serverLeaf
            try FileManager.default.createDirectory(atPath: server, withIntermediateDirectories: true)
            try "".write(toFile: server + "/cgroup.procs", atomically: false, encoding: .utf8)
        }
        return mount
    }

    static let needed: Set<String> = ["cpu", "memory", "pids"]

    @Test("/proc/self/cgroup: the cgroup2 line's path")
    func ownPathParsing() {
        #expect(CgroupV2Delegation.ownPath("12:pids:/x\n0::/system.slice/confine.service\n") == "/system.slice/confine.service")
        #expect(CgroupV2Delegation.ownPath("0::/\n") == "/")
        #expect(CgroupV2Delegation.ownPath("4:memory:/a\n") == nil, "a pure v1 host has no 0:: line")
    }

    @Test("Delegated (a unit with Delegate=yes): the process moves into <own>/server, runs go under <own>/confine")
    func delegatedUnit() throws {
        let me: pid_t = 4242
        let mount = try Self.fakeMount(own: "/system.slice/confine.service", procs: [me])
        defer { try? FileManager.default.removeItem(atPath: mount) }
        let home = try CgroupV2Delegation.settle(mount: mount, ownPath: "/system.slice/confine.service", pid: me, controllers: Self.needed)
        let own = mount + "/system.slice/confine.service"
        #expect(home == own)
        #expect(try String(contentsOfFile: own + "/server/cgroup.procs", encoding: .utf8) == "4242", "moved into the leaf first")
        // The backend then enables the controllers for its children and makes the runs' parent
        // (whose files the kernel would create).
        try FileManager.default.createDirectory(atPath: own + "/confine", withIntermediateDirectories: true)
        for file in ["cgroup.subtree_control", "cpu.weight"] {
            try "".write(toFile: own + "/confine/" + file, atomically: false, encoding: .utf8)
        }
        let backend = try CgroupV2(root: home, parent: "confine", groupWeight: 25)
        #expect(backend.baseDirectories == [own + "/confine"])
        #expect(try String(contentsOfFile: own + "/cgroup.subtree_control", encoding: .utf8) == "+cpu +memory +pids")
        #expect(!FileManager.default.fileExists(atPath: mount + "/confine"), "nothing is made above the delegated cgroup")
    }

    @Test("Placed in <unit>/server by systemd (DelegateSubgroup=server): the unit is the delegated cgroup, no second move")
    func delegateSubgroup() throws {
        let unit = "/system.slice/confine.service"
        let mount = try Self.fakeMount(own: unit + "/server", procs: [77], leaf: false)
        defer { try? FileManager.default.removeItem(atPath: mount) }
        for file in ["cgroup.procs", "cgroup.subtree_control"] {
            try "".write(toFile: mount + unit + "/" + file, atomically: false, encoding: .utf8)
        }
        #expect(try CgroupV2Delegation.settle(mount: mount, ownPath: unit + "/server", pid: 77, controllers: Self.needed) == mount + unit)
        #expect(!FileManager.default.fileExists(atPath: mount + unit + "/server/server"))
    }

    @Test("The true root cgroup: runs go under <mount>/confine, as before; a cgroup namespace's root is delegated")
    func rootCgroup() throws {
        let trueRoot = try Self.fakeMount(own: "/", procs: [1, 77], leaf: false)
        defer { try? FileManager.default.removeItem(atPath: trueRoot) }
        #expect(try CgroupV2Delegation.settle(mount: trueRoot, ownPath: "/", pid: 77, controllers: Self.needed) == trueRoot)
        #expect(!FileManager.default.fileExists(atPath: trueRoot + "/server"))

        // In a container (its own cgroup namespace) "/" is a real cgroup: no internal processes.
        let container = try Self.fakeMount(own: "/", procs: [77], trueRoot: false)
        defer { try? FileManager.default.removeItem(atPath: container) }
        #expect(try CgroupV2Delegation.settle(mount: container, ownPath: "/", pid: 77, controllers: Self.needed) == container)
        #expect(try String(contentsOfFile: container + "/server/cgroup.procs", encoding: .utf8) == "77")
    }

    @Test("A cgroup shared with other processes cannot be delegated: the true root if writable, else an error naming them")
    func sharedCgroup() throws {
        let own = "/user.slice/session-3.scope"
        let host = try Self.fakeMount(own: own, procs: [500, 77], leaf: false)
        defer { try? FileManager.default.removeItem(atPath: host) }
        #expect(try CgroupV2Delegation.settle(mount: host, ownPath: own, pid: 77, controllers: Self.needed) == host,
                "root on the host's own hierarchy: beside systemd's tree, as before")
        #expect(!FileManager.default.fileExists(atPath: host + own + "/server"), "the shell's scope is left alone")

        let container = try Self.fakeMount(own: own, procs: [500, 77], trueRoot: false, leaf: false)
        defer { try? FileManager.default.removeItem(atPath: container) }
        #expect(throws: CgroupError.self) {
            try CgroupV2Delegation.settle(mount: container, ownPath: own, pid: 77, controllers: Self.needed)
        }
        do { _ = try CgroupV2Delegation.settle(mount: container, ownPath: own, pid: 77, controllers: Self.needed) } catch {
            #expect(error.errno == EBUSY)
            #expect(error.description.contains("500"), "names the other process: \(error)")
            #expect(error.description.contains("Delegate=yes"), "says what to do: \(error)")
            #expect(error.description.contains(container + own), "names the cgroup: \(error)")
        }
    }

    @Test("A delegated cgroup without the memory controller is refused, naming it and the fix")
    func missingController() throws {
        let own = "/system.slice/confine.service"
        let mount = try Self.fakeMount(own: own, procs: [77], controllers: "cpu pids", leaf: false)
        defer { try? FileManager.default.removeItem(atPath: mount) }
        do {
            _ = try CgroupV2Delegation.settle(mount: mount, ownPath: own, pid: 77, controllers: Self.needed)
            Issue.record("a cgroup without memory was accepted")
        } catch {
            #expect(error.description.contains("memory"), "\(error)")
            #expect(error.description.contains("Delegate=yes"), "\(error)")
            #expect(!FileManager.default.fileExists(atPath: mount + own + "/server"), "no move when delegation cannot work")
        }
    }

    @Test("A v1 run cgroup has no descriptor for CLONE_INTO_CGROUP")
    func v1HasNoDirectoryDescriptor() throws {
        let run = CgroupV1Run(dirs: ["memory": "/nonexistent"], owner: nil)
        #expect(try run.openDirectory() == nil)
    }

    @Test("On a directory laid out as cgroup2: the spawner goes into <base>/spawner, the runs' parent's and each run's cgroup.procs become its own, and the leaf is never a run")
    func spawnerAdoptedOnAFakeV2Hierarchy() throws {
        let mount = try Self.fakeMount(own: "/", procs: [], leaf: false)
        defer { try? FileManager.default.removeItem(atPath: mount) }
        let base = mount + "/confine"
        try FileManager.default.createDirectory(atPath: base + "/spawner", withIntermediateDirectories: true)
        for file in ["cgroup.subtree_control", "cpu.weight", "cgroup.procs", "spawner/cgroup.procs"] {
            try "".write(toFile: base + "/" + file, atomically: false, encoding: .utf8)
        }
        let backend = try CgroupV2(root: mount, parent: "confine")
        #expect(backend.adoptSpawner(pid: 4321, uid: 65533, gid: 65532) == nil)
        func owner(_ path: String) -> (UInt32, UInt32)? {
            var info = stat()
            return stat(path, &info) == 0 ? (info.st_uid, info.st_gid) : nil
        }
        #expect(owner(base + "/cgroup.procs") ?? (0, 0) == (65533, 65532))
        #expect(owner(base + "/spawner/cgroup.procs") ?? (0, 0) == (65533, 65532))
        #expect(try String(contentsOfFile: base + "/spawner/cgroup.procs", encoding: .utf8) == "4321")
        // A run made now: its cgroup.procs is the spawner's (the kernel would make the file;
        // this stand-in makes a run's files beforehand).
        try FileManager.default.createDirectory(atPath: base + "/run-1", withIntermediateDirectories: true)
        for file in ["cgroup.procs", "memory.max", "pids.max", "cpu.max", "cpu.weight"] {
            try "".write(toFile: base + "/run-1/" + file, atomically: false, encoding: .utf8)
        }
        let run = try backend.create(name: "run-1", limits: CgroupLimits(memoryBytes: 1 << 20, processes: 4, cpuQuota: nil, cpuWeight: 100))
        #expect(owner(base + "/run-1/cgroup.procs") ?? (0, 0) == (65533, 65532))
        #expect(backend.existingRuns() == ["run-1"], "the spawners' leaf is not a run")
        _ = run
        // cgroup v1 has no such thing: inits are moved in after clone.
        let v1 = try CgroupV1(controllerMounts: [:], parent: "x")
        #expect(v1.adoptSpawner(pid: 1, uid: 1, gid: 1)?.contains("v1") == true)
    }

    @Test("Real v2: inits are born in their run's cgroup (clone3 with CLONE_INTO_CGROUP), and runs work as ever")
    func realBornInCgroup() async throws {
        guard Self.realV2 != nil else { return }
        let sandbox = try TestSupport.sandbox(warmPoolSize: 0)
        print("inits are \(sandbox.cgroupPlacement)")
        let before = sandbox.launchesBornInCgroup
        let r = try await sandbox.run(RunRequest(policy: try TestSupport.policy(), command: ["/bin/bash", "-c", "cat /proc/self/cgroup"]))
        #expect(r.verdict == .exited && r.exitCode == 0, "\(r.summary)")
        #expect(sandbox.launchesBornInCgroup == before + 1, "\(sandbox.cgroupPlacement)")
        #expect(r.out == "0::/\n", "its own cgroup namespace's root: \(r.out)")
    }

    /// The backend this process's sandboxes use, when it is a real cgroup v2 one.
    static var realV2: CgroupV2? {
        guard TestSupport.unavailableReason == nil else {
            print("SKIP real cgroup v2 tests: \(TestSupport.unavailableReason!)")
            return nil
        }
        guard let v2 = TestSupport.sandbox.cgroups as? CgroupV2 else {
            print("SKIP real cgroup v2 tests: this host's runs are in cgroup \(TestSupport.sandbox.cgroups?.version.rawValue ?? "none") (make test-cgroup2 runs them on a v2 kernel)")
            return nil
        }
        return v2
    }

    @Test("Real v2: runs sit under this process's cgroup (delegated) or the root's, never beside this process")
    func realPlacement() throws {
        guard let backend = Self.realV2 else { return }
        let text = try String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)
        let own = try #require(CgroupV2Delegation.ownPath(text))
        let mount = String(backend.base.dropLast("/confine".count))
        print("this process: \(own); runs under \(backend.base)")
        if own == "/" {
            #expect(backend.base == "/sys/fs/cgroup/confine")
        } else {
            #expect(own.hasSuffix("/" + CgroupV2Delegation.serverLeaf), "moved into its leaf: \(own)")
            let delegated = "/sys/fs/cgroup" + own.dropLast(CgroupV2Delegation.serverLeaf.count + 1)
            #expect(mount == delegated, "runs go beside the leaf: \(backend.base)")
        }
        let enabled = Set(try String(contentsOfFile: mount + "/cgroup.subtree_control", encoding: .utf8).split(whereSeparator: \.isWhitespace).map(String.init))
        #expect(enabled.isSuperset(of: ["cpu", "memory", "pids"]), "\(enabled)")
    }

    @Test("Real v2: a run cgroup's files hold its limits; its descriptor is a directory; cgroup.kill ends a whole tree")
    func realRunCgroup() throws {
        guard let backend = Self.realV2 else { return }
        let name = "v2test-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        let run = try backend.create(name: name, limits: CgroupLimits(memoryBytes: 40 << 20, processes: 9, cpuQuota: 0.25, cpuWeight: 30))
        defer { try? run.destroy() }
        let dir = backend.base + "/" + name
        func read(_ file: String) throws -> String {
            try String(contentsOfFile: dir + "/" + file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try read("memory.max") == "\(40 << 20)")
        if FileManager.default.fileExists(atPath: dir + "/memory.swap.max") { #expect(try read("memory.swap.max") == "0") }
        #expect(try read("pids.max") == "9")
        #expect(try read("cpu.max") == "25000 100000")
        #expect(try read("cpu.weight") == "30")

        let fd = try #require(try run.openDirectory())
        var info = stat()
        #expect(fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR)
        close(fd)

        // A shell that forks a setsid'd grandchild after it joined: one write kills them all.
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "sleep 0.3; setsid sleep 600 & sleep 600"]
        try ProcessLaunch.run(shell)
        try run.join(pid: shell.processIdentifier)
        run.startCounting()
        var tree: [pid_t] = []
        for _ in 0..<300 where tree.count < 3 {
            usleep(10_000)
            tree = run.processes()
        }
        #expect(tree.count == 3, "the shell and both sleepers are in the run's cgroup: \(tree)")
        run.killAll()
        #expect(run.processes().isEmpty)
        shell.waitUntilExit()
        #expect(shell.terminationReason == .uncaughtSignal && shell.terminationStatus == SIGKILL)
        let stats = run.stats()
        #expect(stats.oomKills == 0)
        #expect((stats.memoryPeakBytes ?? 0) > 0, "memory.peak is read")
        try run.destroy()
        #expect(!FileManager.default.fileExists(atPath: dir))
    }
}
