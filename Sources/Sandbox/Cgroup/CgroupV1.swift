import Glibc
import Synchronization

/// cgroup v1: one directory per controller (memory, pids, cpu, cpuacct) for each run, under
/// `<mount>/<parent>/<run>`. Swap is closed with memsw where the kernel accounts it.
///
/// Removing a v1 cgroup waits for RCU in each of the four hierarchies (about 2–3 ms each here),
/// so a finished run's empty cgroup is kept, its counters reset, and handed to a later run.
public final class CgroupV1: CgroupBackend {
    public let version = CgroupVersion.v1
    /// Controller name → `<mount>/<parent>` (cpu and cpuacct may share one).
    let parents: [String: String]
    /// Empty run cgroups ready for reuse.
    private let idle = Mutex<[CgroupV1Run]>([])
    static let maxIdle = 32

    /// `groupWeight` (v2 scale) sets `cpu.shares` of `<cpu mount>/<parent>`: all runs together
    /// against their siblings.
    public init(controllerMounts: [String: String], parent: String, groupWeight: Int = 100) throws(CgroupError) {
        var parents: [String: String] = [:]
        for (controller, mount) in controllerMounts {
            let dir = mount + "/" + parent
            try CgroupFile.makeDirectory(dir)
            parents[controller] = dir
        }
        self.parents = parents
        if let cpu = parents["cpu"] { try CgroupFile.write(cpu + "/cpu.shares", String(Self.shares(weight: groupWeight))) }
    }

    public var baseDirectories: [String] { Array(Set(parents.values)).sorted() }

    public func create(name: String, limits: CgroupLimits) throws(CgroupError) -> any RunCgroup {
        if let reused = idle.withLock({ $0.popLast() }) {
            do { try reused.apply(limits) } catch {
                try? reused.destroy()
                throw error
            }
            return reused
        }
        let run = CgroupV1Run(dirs: parents.mapValues { $0 + "/" + name }, owner: self)
        do {
            for dir in Set(run.dirs.values) { try CgroupFile.makeDirectory(dir) }
            try run.apply(limits)
        } catch {
            try? run.destroy()
            throw error
        }
        return run
    }

    /// v2 weight (1...10000, default 100) → v1 shares (2...262144, default 1024).
    static func shares(weight: Int) -> Int { max(2, min(262_144, weight * 1024 / 100)) }

    /// In any hierarchy: a process that ended while removing a run's directories (one
    /// hierarchy after the other) leaves them in some hierarchies only.
    public func existingRuns() -> [String] {
        Set(Set(parents.values).flatMap(CgroupFile.subdirectories)).sorted()
    }

    public func remove(name: String) throws(CgroupError) {
        try CgroupV1Run(dirs: parents.mapValues { $0 + "/" + name }, owner: nil).destroy()
    }

    /// Keeps an empty run cgroup for reuse, or removes it when enough are kept.
    func recycle(_ run: CgroupV1Run) throws(CgroupError) {
        let kept = idle.withLock { list in
            guard list.count < Self.maxIdle else { return false }
            list.append(run)
            return true
        }
        if !kept { try run.destroy() }
    }

    public func removeIdle() {
        let all = idle.withLock { list in
            defer { list = [] }
            return list
        }
        for run in all { try? run.destroy() }
    }
}

/// One run's v1 cgroup directories. Used by one thread at a time.
final class CgroupV1Run: RunCgroup, @unchecked Sendable {
    let dirs: [String: String]
    private weak var owner: CgroupV1?
    private var cpuBase: UInt64 = 0
    private var oomBase = 0
    /// What the cgroup held when the run began (kernel memory a reused cgroup still holds of
    /// earlier runs: cached directory entries and inodes, reclaimed first under pressure): not
    /// this run's, so not in its peak.
    private var memoryBase: UInt64 = 0
    /// The limits written last: a claimed warm sandbox with the same limits needs no writes.
    private var applied: CgroupLimits?

    /// The files of every launch and every watch loop, kept open while the cgroup lives
    /// (reused runs included), by path.
    private var kept: [String: KeptCgroupFile] = [:]

    init(dirs: [String: String], owner: CgroupV1?) {
        self.dirs = dirs
        self.owner = owner
    }

    private func kept(_ controller: String, _ name: String, writable: Bool = false) -> KeptCgroupFile {
        kept(path: dirs[controller]! + "/" + name, writable: writable)
    }
    private func kept(path: String, writable: Bool) -> KeptCgroupFile {
        if let file = kept[path] { return file }
        let file = KeptCgroupFile(path, writable: writable)
        kept[path] = file
        return file
    }
    private var cpuUsage: KeptCgroupFile { kept("cpuacct", "cpuacct.usage", writable: true) }
    private var memoryMaxUsage: KeptCgroupFile { kept("memory", "memory.max_usage_in_bytes", writable: true) }
    private var tcpMaxUsage: KeptCgroupFile { kept("memory", "memory.kmem.tcp.max_usage_in_bytes", writable: true) }
    private var oomControl: KeptCgroupFile { kept("memory", "memory.oom_control") }
    /// Tasks (processes and threads) in the cgroup now: a plain counter, exact at every read.
    private var tasks: KeptCgroupFile { kept("pids", "pids.current") }
    private var memoryUsage: KeptCgroupFile { kept("memory", "memory.usage_in_bytes") }
    /// The process list, always read through a descriptor of its own: v1 keeps the list an open
    /// cgroup.procs first read and serves it again to every later read through that descriptor
    /// until a second has passed without one — a kept descriptor shows processes long gone and
    /// misses new ones. (Writes, `join`, go through kept descriptors: they are not cached.)
    private var procsPath: String { dirs["pids"]! + "/cgroup.procs" }

    private var rawOOMKills: Int { Int(oomControl.readKey("oom_kill") ?? 0) }
    private var rawCPU: UInt64? { cpuUsage.readUInt() }

    func join(pid: pid_t) throws(CgroupError) {
        for dir in Set(dirs.values).sorted() {
            try kept(path: dir + "/cgroup.procs", writable: true).write(String(pid))
        }
    }

    /// Each hierarchy's `tasks`, kept open: written "0", it moves the writing thread (init,
    /// single-threaded: the process) without the host-wide threadgroup lock a move by pid takes.
    func selfJoinFiles() throws(CgroupError) -> [(path: String, fd: Int32)]? {
        var files: [(path: String, fd: Int32)] = []
        for dir in Set(dirs.values).sorted() {
            let file = kept(path: dir + "/tasks", writable: true)
            files.append((file.path, try file.openedDescriptor()))
        }
        return files
    }

    func apply(_ limits: CgroupLimits) throws(CgroupError) {
        if applied == limits { return }
        applied = nil
        try write(limits)
        applied = limits
    }

    private func write(_ limits: CgroupLimits) throws(CgroupError) {
        let memory = dirs["memory"]!
        let memsw = memory + "/memory.memsw.limit_in_bytes"
        if CgroupFile.exists(memsw) {
            // memsw may never be below the memory limit: lower memory first, raise memsw first.
            let current = CgroupFile.readUInt(memory + "/memory.limit_in_bytes") ?? UInt64.max
            if limits.memoryBytes < current {
                try CgroupFile.write(memory + "/memory.limit_in_bytes", String(limits.memoryBytes))
                try CgroupFile.write(memsw, String(limits.memoryBytes))
            } else {
                try CgroupFile.write(memsw, String(limits.memoryBytes))
                try CgroupFile.write(memory + "/memory.limit_in_bytes", String(limits.memoryBytes))
            }
        } else {
            try CgroupFile.write(memory + "/memory.limit_in_bytes", String(limits.memoryBytes))
            try? CgroupFile.write(memory + "/memory.swappiness", "0")
        }
        // Socket buffers: v1 charges them (to a counter of their own) only once the TCP
        // kernel-memory limit is set; without it a run holds gigabytes of unread loopback
        // data beyond its memory limit. Capped at the memory limit and counted in the peak.
        let tcp = memory + "/memory.kmem.tcp.limit_in_bytes"
        if CgroupFile.exists(tcp) { try CgroupFile.write(tcp, String(limits.memoryBytes)) }
        try CgroupFile.write(dirs["pids"]! + "/pids.max", String(limits.processes))
        let cpu = dirs["cpu"]!
        let period = 100_000
        try CgroupFile.write(cpu + "/cpu.cfs_period_us", String(period))
        let quota = limits.cpuQuota.map { String(max(1000, Int($0 * Double(period)))) } ?? "-1"
        try CgroupFile.write(cpu + "/cpu.cfs_quota_us", quota)
        try CgroupFile.write(cpu + "/cpu.shares", String(CgroupV1.shares(weight: limits.cpuWeight)))
    }

    func startCounting() {
        // Writing 0 resets max_usage to the current usage, and cpuacct.usage to zero.
        try? memoryMaxUsage.write("0")
        memoryBase = memoryMaxUsage.readUInt() ?? 0
        try? tcpMaxUsage.write("0")
        if (try? cpuUsage.write("0")) != nil { cpuBase = 0 } else { cpuBase = rawCPU ?? 0 }
        oomBase = rawOOMKills
    }

    func stats() -> CgroupStats {
        CgroupStats(
            cpuUsageNs: cpuUsageNs(),
            memoryPeakBytes: memoryPeak(),
            oomKills: max(0, rawOOMKills - oomBase))
    }

    /// The memory peak, socket buffers included (v1 counts them apart from the rest).
    func memoryPeak() -> UInt64? {
        guard let peak = memoryMaxUsage.readUInt() else { return nil }
        return (peak > memoryBase ? peak - memoryBase : 0) + (tcpMaxUsage.readUInt() ?? 0)
    }

    func cpuUsageNs() -> UInt64? { rawCPU.map { $0 >= cpuBase ? $0 - cpuBase : 0 } }

    func finish() throws(CgroupError) {
        guard let owner, CgroupFile.killAll(procsPath) else { return try destroy() }
        // Page cache the run read stays charged here: hand it to the parent, so that the next
        // run's limit is its own. What every run leaves (0.3–0.9 MiB measured after a bash
        // run, half of it kernel memory: directory entries, inodes) is left up to `keptResidue`:
        // emptying is a reclaim pass over every slab shrinker, a tenth of a warm launch's CPU,
        // and the next run's peak counts from what it found (`memoryBase`).
        if (memoryUsage.readUInt() ?? 0) > Self.keptResidue {
            try? CgroupFile.write(dirs["memory"]! + "/memory.force_empty", "0")
        }
        try owner.recycle(self)
    }

    /// The most a recycled cgroup keeps of earlier runs without being emptied.
    static let keptResidue: UInt64 = 4 << 20

    func processes() -> [pid_t] { CgroupFile.pids(procsPath) }

    /// By the task counter, exact and cheap (no list to build, and never a stale one): a task
    /// stays counted until it is reaped, and `pid` — init, unreaped while this is asked —
    /// outlives every other process of its pid namespace, so one task left is init alone.
    func holdsOnly(_ pid: pid_t) -> Bool { tasks.readUInt() == 1 }

    /// cgroup v1 has no CLONE_INTO_CGROUP: init moves itself in (`selfJoinFiles`).
    func openDirectory() throws(CgroupError) -> Int32? { nil }

    func killAll() { CgroupFile.killAll(procsPath) }

    func destroy() throws(CgroupError) {
        killAll()
        kept.values.forEach { $0.close() }
        kept = [:]
        var firstError: CgroupError?
        for dir in Set(dirs.values).sorted() {
            do { try CgroupFile.removeDirectory(dir, procsFile: dir + "/cgroup.procs") } catch {
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }
    }
}
