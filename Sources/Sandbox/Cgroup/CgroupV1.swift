import Glibc

/// cgroup v1: one directory per controller (memory, pids, cpu, cpuacct) for each run, under
/// `<mount>/<parent>/<run>`. Swap is closed with memsw where the kernel accounts it.
public struct CgroupV1: CgroupBackend {
    public let version = CgroupVersion.v1
    /// Controller name → `<mount>/<parent>` (cpu and cpuacct may share one).
    let parents: [String: String]

    public init(controllerMounts: [String: String], parent: String) throws(CgroupError) {
        var parents: [String: String] = [:]
        for (controller, mount) in controllerMounts {
            let dir = mount + "/" + parent
            try CgroupFile.makeDirectory(dir)
            parents[controller] = dir
        }
        self.parents = parents
    }

    var uniqueParents: [String] { Array(Set(parents.values)).sorted() }

    public func create(name: String, limits: CgroupLimits) throws(CgroupError) -> any RunCgroup {
        let run = CgroupV1Run(dirs: parents.mapValues { $0 + "/" + name })
        do {
            for dir in Set(run.dirs.values) { try CgroupFile.makeDirectory(dir) }
            let memory = run.dirs["memory"]!
            try CgroupFile.write(memory + "/memory.limit_in_bytes", String(limits.memoryBytes))
            if CgroupFile.exists(memory + "/memory.memsw.limit_in_bytes") {
                try CgroupFile.write(memory + "/memory.memsw.limit_in_bytes", String(limits.memoryBytes))
            } else {
                try? CgroupFile.write(memory + "/memory.swappiness", "0")
            }
            try CgroupFile.write(run.dirs["pids"]! + "/pids.max", String(limits.processes))
            let cpu = run.dirs["cpu"]!
            let period = 100_000
            try CgroupFile.write(cpu + "/cpu.cfs_period_us", String(period))
            let quota = limits.cpuQuota.map { String(max(1000, Int($0 * Double(period)))) } ?? "-1"
            try CgroupFile.write(cpu + "/cpu.cfs_quota_us", quota)
            try CgroupFile.write(cpu + "/cpu.shares", String(Self.shares(weight: limits.cpuWeight)))
        } catch {
            try? run.destroy()
            throw error
        }
        return run
    }

    /// v2 weight (1...10000, default 100) → v1 shares (2...262144, default 1024).
    static func shares(weight: Int) -> Int { max(2, min(262_144, weight * 1024 / 100)) }

    public func existingRuns() -> [String] {
        parents["memory"].map(CgroupFile.subdirectories) ?? []
    }

    public func remove(name: String) throws(CgroupError) {
        try CgroupV1Run(dirs: parents.mapValues { $0 + "/" + name }).destroy()
    }
}

/// One run's v1 cgroup directories.
struct CgroupV1Run: RunCgroup {
    let dirs: [String: String]

    func join(pid: pid_t) throws(CgroupError) {
        for dir in Set(dirs.values).sorted() {
            try CgroupFile.write(dir + "/cgroup.procs", String(pid))
        }
    }

    func stats() -> CgroupStats {
        let memory = dirs["memory"]!
        return CgroupStats(
            cpuUsageNs: cpuUsageNs(),
            memoryPeakBytes: CgroupFile.readUInt(memory + "/memory.max_usage_in_bytes"),
            oomKills: Int(CgroupFile.readKey(memory + "/memory.oom_control", "oom_kill") ?? 0))
    }

    func cpuUsageNs() -> UInt64? { CgroupFile.readUInt(dirs["cpuacct"]! + "/cpuacct.usage") }

    func killAll() { CgroupFile.killAll(dirs["pids"]! + "/cgroup.procs") }

    func destroy() throws(CgroupError) {
        killAll()
        var firstError: CgroupError?
        for dir in Set(dirs.values).sorted() {
            do { try CgroupFile.removeDirectory(dir, procsFile: dir + "/cgroup.procs") } catch {
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }
    }
}
