import Foundation
import Glibc
import HumanText

/// Limits a run's cgroup enforces on the whole process tree.
public struct CgroupLimits: Sendable, Equatable {
    public var memoryBytes: UInt64
    public var processes: Int
    /// Cores of CPU bandwidth, nil for none.
    public var cpuQuota: Double?
    /// cgroup v2 weight scale (1...10000, 100 = an ordinary cgroup).
    public var cpuWeight: Int

    public init(memoryBytes: UInt64, processes: Int, cpuQuota: Double?, cpuWeight: Int) {
        self.memoryBytes = memoryBytes
        self.processes = processes
        self.cpuQuota = cpuQuota
        self.cpuWeight = cpuWeight
    }
}

/// What a run's cgroup measured.
public struct CgroupStats: Sendable, Equatable {
    /// CPU time of every process that lived in the cgroup, in nanoseconds.
    public var cpuUsageNs: UInt64?
    /// Peak memory, in bytes.
    public var memoryPeakBytes: UInt64?
    /// Processes killed by the OOM killer because of the cgroup's limit.
    public var oomKills: Int
}

/// A failure to create, configure, join or remove a cgroup, naming the file and the errno.
public struct CgroupError: Error, CustomStringConvertible, Equatable {
    public var operation: String
    public var path: String
    public var errno: Int32

    public var description: String {
        "cgroup: \(operation) \(path): \(ErrnoName.describe(errno))"
    }
}

/// Which cgroup hierarchy a backend drives.
public enum CgroupVersion: String, Sendable {
    case v1, v2
}

/// A cgroup hierarchy able to hold runs: creates one cgroup per run with its limits.
public protocol CgroupBackend: Sendable {
    var version: CgroupVersion { get }
    /// The directories holding one cgroup per run (one per hierarchy).
    var baseDirectories: [String] { get }
    /// Creates (and configures) the cgroup of one run.
    func create(name: String, limits: CgroupLimits) throws(CgroupError) -> any RunCgroup
    /// Names of run cgroups that exist now (for recovery after a crash).
    func existingRuns() -> [String]
    /// Kills every process of a leftover run cgroup and removes it.
    func remove(name: String) throws(CgroupError)
    /// Removes the cgroups kept for reuse (at shutdown).
    func removeIdle()
    /// Places the spawner (`pid`, running as `uid`/`gid`) where it may create inits directly
    /// in run cgroups (clone3 with CLONE_INTO_CGROUP): nil when done, else why not — then
    /// inits are moved into their cgroup after clone (`selfJoinFiles`, else `join(pid:)`).
    func adoptSpawner(pid: pid_t, uid: UInt32, gid: UInt32) -> String?
}

extension CgroupBackend {
    public func adoptSpawner(pid: pid_t, uid: UInt32, gid: UInt32) -> String? {
        "cgroup \(version.rawValue) has no CLONE_INTO_CGROUP"
    }
}

/// The cgroup of one run.
public protocol RunCgroup: Sendable {
    /// Moves `pid` into the cgroup (every controller).
    func join(pid: pid_t) throws(CgroupError)
    /// The files a process moves itself in through by writing "0" to each, with their paths
    /// (cgroup v1's `tasks`, one a hierarchy). A thread moving itself takes no lock over every
    /// process of the host; `join(pid:)` does, and waits for an RCU grace period (about 6 ms
    /// here) whenever no other move came just before — on the launch path, or holding
    /// `cgroup_mutex` while other launches wait. Opened here, with this process's rights (the
    /// kernel checks the opener's); the descriptors stay the cgroup's. nil where the hierarchy
    /// has no such file (v2: the child is born in its cgroup, or moved by `join(pid:)`).
    func selfJoinFiles() throws(CgroupError) -> [(path: String, fd: Int32)]?
    /// Sets the limits (again): a warm sandbox gets its run's limits when it is claimed.
    func apply(_ limits: CgroupLimits) throws(CgroupError)
    /// Counts from now on: CPU time, OOM kills and (where the hierarchy can reset it, v1) peak
    /// memory. Called when the run starts, so that a sandbox's preparation is not billed.
    func startCounting()
    /// What the cgroup measured since `startCounting()`.
    func stats() -> CgroupStats
    /// CPU time since `startCounting()` (ns), cheap enough to poll.
    func cpuUsageNs() -> UInt64?
    /// The processes in the cgroup now (host pids).
    func processes() -> [pid_t]
    /// Whether the process `pid` (the run's init, not yet reaped) is all the cgroup holds now.
    func holdsOnly(_ pid: pid_t) -> Bool
    /// SIGKILLs every process in the cgroup.
    func killAll()
    /// The run is over: kills what is left, then recycles the cgroup for a later run (v1,
    /// where removing one costs milliseconds) or removes it.
    func finish() throws(CgroupError)
    /// Kills what is left, then removes the cgroup directories.
    func destroy() throws(CgroupError)
    /// A new `O_RDONLY | O_DIRECTORY | O_CLOEXEC` descriptor of the run's cgroup, for
    /// `clone3(CLONE_INTO_CGROUP)` (the child is born in the cgroup: no move afterwards); nil
    /// where the hierarchy has no such thing (cgroup v1). The caller closes it.
    func openDirectory() throws(CgroupError) -> Int32?
}

extension RunCgroup {
    public func holdsOnly(_ pid: pid_t) -> Bool { processes().allSatisfy { $0 == pid } }
    public func selfJoinFiles() throws(CgroupError) -> [(path: String, fd: Int32)]? { nil }
}

/// Picks the hierarchy this host offers: a pure cgroup2 mount with the controllers we need,
/// else cgroup v1 with memory, pids, cpu and cpuacct mounted.
public enum CgroupDetection {
    /// The backend for this host, or an error that names what is missing.
    /// `groupWeight` is the CPU weight of all runs together (see `SandboxConfiguration`).
    public static func detect(parent: String = "confine", groupWeight: Int = SandboxConfiguration().groupCPUWeight) throws(CgroupError) -> any CgroupBackend {
        let mounts = CgroupMounts.read()
        if let v2 = mounts.v2, let controllers = CgroupFile.readString(v2 + "/cgroup.controllers"),
           Set(controllers.split(whereSeparator: \.isWhitespace).map(String.init))
               .isSuperset(of: CgroupV2.requiredControllers) {
            let home = try CgroupV2Delegation.home(mount: v2, controllers: CgroupV2.requiredControllers)
            return try CgroupV2(root: home, parent: parent, groupWeight: groupWeight)
        }
        let needed = ["memory", "pids", "cpu", "cpuacct"]
        var dirs: [String: String] = [:]
        for controller in needed {
            guard let dir = mounts.v1[controller] else {
                throw CgroupError(operation: "find the \(controller) controller (neither cgroup v2 with memory, pids and cpu, nor a v1 mount of it) in", path: "/proc/self/mountinfo", errno: ENOENT)
            }
            dirs[controller] = dir
        }
        return try CgroupV1(controllerMounts: dirs, parent: parent, groupWeight: groupWeight)
    }
}

/// Where the cgroup hierarchies are mounted, read from /proc/self/mountinfo.
struct CgroupMounts {
    var v2: String?
    var v1: [String: String] = [:]

    static func read() -> CgroupMounts {
        var result = CgroupMounts()
        guard let text = CgroupFile.readString("/proc/self/mountinfo") else { return result }
        for line in text.split(separator: "\n") {
            // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " ")
            let right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 3 else { continue }
            let mountPoint = String(left[4])
            if right[0] == "cgroup2", result.v2 == nil || mountPoint == "/sys/fs/cgroup" {
                result.v2 = mountPoint
            } else if right[0] == "cgroup" {
                for option in right[2].split(separator: ",") where result.v1[String(option)] == nil {
                    result.v1[String(option)] = mountPoint
                }
            }
        }
        return result
    }
}

/// Small, errno-carrying file operations on cgroupfs.
enum CgroupFile {
    static func write(_ path: String, _ value: String) throws(CgroupError) {
        if let err = FileWriter.write(path, value) {
            throw CgroupError(operation: "write \"\(value)\" to", path: path, errno: err)
        }
    }

    static func readString(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 4096) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func readUInt(_ path: String) -> UInt64? { readString(path).flatMap(number) }

    /// The value of `key` in a "key value" file (memory.events, cpu.stat, memory.oom_control).
    static func readKey(_ path: String, _ key: String) -> UInt64? { readString(path).flatMap { value(of: key, in: $0) } }

    // The files' formats (also read through `KeptCgroupFile`).

    /// A file holding one unsigned number (blanks around it allowed). Parsed from its bytes:
    /// Foundation's trimming bridges through NSString, and the counters are read on every run.
    static func number(_ text: String) -> UInt64? { number(utf8: Array(text.utf8)[...]) }

    /// `number(_:)` of a file's bytes.
    static func number(utf8 bytes: ArraySlice<UInt8>) -> UInt64? {
        func blank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0a || b == 0x09 || b == 0x0d }
        guard let first = bytes.firstIndex(where: { !blank($0) }), let last = bytes.lastIndex(where: { !blank($0) }) else {
            return nil
        }
        var value: UInt64 = 0
        for b in bytes[first...last] {
            guard b >= 0x30 && b <= 0x39 else { return nil }
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(UInt64(b - 0x30))
            if o1 || o2 { return nil }
            value = sum
        }
        return value
    }

    /// The value of `key` in "key value" lines.
    static func value(of key: String, in text: String) -> UInt64? {
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == key { return UInt64(parts[1]) }
        }
        return nil
    }

    /// The pids of a cgroup.procs file's text.
    static func pidList(_ text: String) -> [pid_t] { text.split(separator: "\n").compactMap { pid_t($0) } }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func makeDirectory(_ path: String) throws(CgroupError) {
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw CgroupError(operation: "create", path: path, errno: errno)
        }
    }

    /// Names of the directories in `path`, sorted.
    static func subdirectories(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(cString: $0.bindMemory(to: CChar.self).baseAddress!)
            }
            if entry.pointee.d_type == DT_DIR && name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func pids(_ procsFile: String) -> [pid_t] { pidList(readString(procsFile) ?? "") }

    /// SIGKILLs the processes listed in `procsFile` until it is empty (bounded); whether it is.
    @discardableResult
    static func killAll(_ procsFile: String) -> Bool {
        for _ in 0..<200 {
            let pids = pids(procsFile)
            if pids.isEmpty { return true }
            for pid in pids { kill(pid, SIGKILL) }
            usleep(1000)
        }
        return false
    }

    /// rmdir, retried while the kernel finishes taking the cgroup's last processes away.
    static func removeDirectory(_ path: String, procsFile: String) throws(CgroupError) {
        var lastError: Int32 = 0
        for attempt in 0..<200 {
            if rmdir(path) == 0 || errno == ENOENT { return }
            lastError = errno
            if lastError != EBUSY { break }
            killAll(procsFile)
            usleep(attempt < 10 ? 500 : 5000)
        }
        throw CgroupError(operation: "remove", path: path, errno: lastError)
    }
}
