import Glibc

/// cgroup v2: one directory per run under `<root>/<parent>`, with the memory, pids and cpu
/// controllers enabled down the path. Swap is closed with memory.swap.max = 0; a run is killed
/// as a whole with cgroup.kill where the kernel has it.
public struct CgroupV2: CgroupBackend {
    public let version = CgroupVersion.v2
    static let requiredControllers: Set<String> = ["memory", "pids", "cpu"]
    /// `<root>/<parent>`: the directory holding one cgroup per run.
    public let base: String
    public var baseDirectories: [String] { [base] }

    /// `root` is the cgroup2 mount (or, in tests, a directory laid out as one). `groupWeight`
    /// is the `cpu.weight` of `<root>/<parent>`: all runs together against their siblings.
    public init(root: String, parent: String, groupWeight: Int = 100) throws(CgroupError) {
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
        try CgroupFile.write(base + "/cpu.weight", String(max(1, min(10_000, groupWeight))))
    }

    public func create(name: String, limits: CgroupLimits) throws(CgroupError) -> any RunCgroup {
        let run = CgroupV2Run(dir: base + "/" + name)
        do {
            try CgroupFile.makeDirectory(run.dir)
            try run.apply(limits)
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

    public func removeIdle() {}
}

/// One run's v2 cgroup directory. Used by one thread at a time. Not reused: memory.peak
/// cannot be reset for a new run on most kernels.
final class CgroupV2Run: RunCgroup, @unchecked Sendable {
    let dir: String
    private var cpuBase: UInt64 = 0
    private var oomBase = 0
    /// The limits written last: a claimed warm sandbox with the same limits needs no writes.
    private var applied: CgroupLimits?

    init(dir: String) { self.dir = dir }

    private var rawOOMKills: Int { Int(CgroupFile.readKey(dir + "/memory.events", "oom_kill") ?? 0) }
    private var rawCPU: UInt64? { CgroupFile.readKey(dir + "/cpu.stat", "usage_usec").map { $0 * 1000 } }

    func join(pid: pid_t) throws(CgroupError) {
        try CgroupFile.write(dir + "/cgroup.procs", String(pid))
    }

    func apply(_ limits: CgroupLimits) throws(CgroupError) {
        if applied == limits { return }
        applied = nil
        try write(limits)
        applied = limits
    }

    private func write(_ limits: CgroupLimits) throws(CgroupError) {
        try CgroupFile.write(dir + "/memory.max", String(limits.memoryBytes))
        if CgroupFile.exists(dir + "/memory.swap.max") {
            try CgroupFile.write(dir + "/memory.swap.max", "0")
        }
        try CgroupFile.write(dir + "/pids.max", String(limits.processes))
        let period = 100_000
        let quota = limits.cpuQuota.map { String(max(1000, Int($0 * Double(period)))) } ?? "max"
        try CgroupFile.write(dir + "/cpu.max", "\(quota) \(period)")
        try CgroupFile.write(dir + "/cpu.weight", String(max(1, min(10_000, limits.cpuWeight))))
    }

    /// memory.peak resets only per open file (kernel 6.12+): here the peak includes setup.
    func startCounting() {
        cpuBase = rawCPU ?? 0
        oomBase = rawOOMKills
    }

    func stats() -> CgroupStats {
        CgroupStats(
            cpuUsageNs: cpuUsageNs(),
            memoryPeakBytes: CgroupFile.readUInt(dir + "/memory.peak"),
            oomKills: max(0, rawOOMKills - oomBase))
    }

    func cpuUsageNs() -> UInt64? { rawCPU.map { $0 >= cpuBase ? $0 - cpuBase : 0 } }

    func finish() throws(CgroupError) { try destroy() }

    func processes() -> [pid_t] { CgroupFile.pids(dir + "/cgroup.procs") }

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
