import Glibc

/// cgroup v2: one directory per run under `<root>/<parent>`, with the memory, pids and cpu
/// controllers enabled down the path. Swap is closed with memory.swap.max = 0; a run is killed
/// as a whole with cgroup.kill where the kernel has it.
public struct CgroupV2: CgroupBackend {
    public let version = CgroupVersion.v2
    static let requiredControllers: Set<String> = ["memory", "pids", "cpu"]
    /// `<root>/<parent>`: the directory holding one cgroup per run.
    public let base: String

    /// `root` is the cgroup2 mount (or, in tests, a directory laid out as one).
    public init(root: String, parent: String) throws(CgroupError) {
        base = root + "/" + parent
        try CgroupFile.makeDirectory(base)
        let enable = Self.requiredControllers.sorted().map { "+" + $0 }.joined(separator: " ")
        for dir in [root, base] {
            let control = dir + "/cgroup.subtree_control"
            let enabled = Set((CgroupFile.readString(control) ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
            if !enabled.isSuperset(of: Self.requiredControllers) {
                try CgroupFile.write(control, enable)
            }
        }
    }

    public func create(name: String, limits: CgroupLimits) throws(CgroupError) -> any RunCgroup {
        let run = CgroupV2Run(dir: base + "/" + name)
        do {
            try CgroupFile.makeDirectory(run.dir)
            try CgroupFile.write(run.dir + "/memory.max", String(limits.memoryBytes))
            if CgroupFile.exists(run.dir + "/memory.swap.max") {
                try CgroupFile.write(run.dir + "/memory.swap.max", "0")
            }
            try CgroupFile.write(run.dir + "/pids.max", String(limits.processes))
            let period = 100_000
            let quota = limits.cpuQuota.map { String(max(1000, Int($0 * Double(period)))) } ?? "max"
            try CgroupFile.write(run.dir + "/cpu.max", "\(quota) \(period)")
            try CgroupFile.write(run.dir + "/cpu.weight", String(max(1, min(10_000, limits.cpuWeight))))
        } catch {
            try? run.destroy()
            throw error
        }
        return run
    }

    public func existingRuns() -> [String] { CgroupFile.subdirectories(base) }

    public func remove(name: String) throws(CgroupError) {
        try CgroupV2Run(dir: base + "/" + name).destroy()
    }
}

/// One run's v2 cgroup directory.
struct CgroupV2Run: RunCgroup {
    let dir: String

    func join(pid: pid_t) throws(CgroupError) {
        try CgroupFile.write(dir + "/cgroup.procs", String(pid))
    }

    func stats() -> CgroupStats {
        CgroupStats(
            cpuUsageNs: cpuUsageNs(),
            memoryPeakBytes: CgroupFile.readUInt(dir + "/memory.peak"),
            oomKills: Int(CgroupFile.readKey(dir + "/memory.events", "oom_kill") ?? 0))
    }

    func cpuUsageNs() -> UInt64? {
        CgroupFile.readKey(dir + "/cpu.stat", "usage_usec").map { $0 * 1000 }
    }

    func killAll() {
        if CgroupFile.exists(dir + "/cgroup.kill"), (try? CgroupFile.write(dir + "/cgroup.kill", "1")) != nil {
            return
        }
        CgroupFile.killAll(dir + "/cgroup.procs")
    }

    func destroy() throws(CgroupError) {
        if !CgroupFile.exists(dir) { return }
        CgroupFile.killAll(dir + "/cgroup.procs")
        try CgroupFile.removeDirectory(dir, procsFile: dir + "/cgroup.procs")
    }
}
