import Glibc

/// cgroup v2: one directory per run under `<root>/<parent>`, with the memory, pids and cpu
/// controllers enabled down the path. `root` is the cgroup `CgroupV2Delegation` chose: the
/// mount's root, or this process's own delegated cgroup (which it has left for its leaf
/// `server`). Swap is closed with memory.swap.max = 0; a run is killed as a whole with
/// cgroup.kill where the kernel has it (5.14+); `openDirectory()` hands the run's cgroup out for
/// clone3(CLONE_INTO_CGROUP).
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

/// One run's v2 cgroup directory. Used by one thread at a time.
///
/// Not reused for a later run: removing a v2 cgroup is cheap (no per-hierarchy RCU wait as on
/// v1), and before Linux 6.12 memory.peak cannot be reset, so a reused cgroup would report an
/// earlier run's peak. From 6.12 a write to an open memory.peak resets the peak seen through that
/// descriptor: `startCounting()` does that, and the run's peak then leaves out the sandbox's
/// preparation (a warm sandbox's included).
final class CgroupV2Run: RunCgroup, @unchecked Sendable {
    let dir: String
    private var cpuBase: UInt64 = 0
    private var oomBase = 0
    /// memory.peak opened and reset by `startCounting()` (Linux 6.12+), else -1.
    private var peakDescriptor: Int32 = -1
    /// The limits written last: a claimed warm sandbox with the same limits needs no writes.
    private var applied: CgroupLimits?

    /// The files of every launch and every watch loop, kept open while the cgroup lives.
    private let memoryEvents, cpuStat, procs: KeptCgroupFile

    init(dir: String) {
        self.dir = dir
        memoryEvents = KeptCgroupFile(dir + "/memory.events")
        cpuStat = KeptCgroupFile(dir + "/cpu.stat")
        procs = KeptCgroupFile(dir + "/cgroup.procs")
    }

    deinit { closePeak() }

    private var rawOOMKills: Int { Int(memoryEvents.readKey("oom_kill") ?? 0) }
    private var rawCPU: UInt64? { cpuStat.readKey("usage_usec").map { $0 * 1000 } }

    func join(pid: pid_t) throws(CgroupError) {
        try CgroupFile.write(dir + "/cgroup.procs", String(pid))
    }

    func openDirectory() throws(CgroupError) -> Int32? {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw CgroupError(operation: "open (for CLONE_INTO_CGROUP)", path: dir, errno: errno) }
        return fd
    }

    func apply(_ limits: CgroupLimits) throws(CgroupError) {
        if applied == limits { return }
        applied = nil
        try write(limits)
        applied = limits
    }

    private func write(_ limits: CgroupLimits) throws(CgroupError) {
        try CgroupFile.write(dir + "/memory.max", String(limits.memoryBytes))
        // Without swap accounting (swapaccount=0, or no swap configured in the kernel) the
        // file is absent and there is no swap to close.
        if CgroupFile.exists(dir + "/memory.swap.max") {
            try CgroupFile.write(dir + "/memory.swap.max", "0")
        }
        try CgroupFile.write(dir + "/pids.max", String(limits.processes))
        let period = 100_000
        let quota = limits.cpuQuota.map { String(max(1000, Int($0 * Double(period)))) } ?? "max"
        try CgroupFile.write(dir + "/cpu.max", "\(quota) \(period)")
        try CgroupFile.write(dir + "/cpu.weight", String(max(1, min(10_000, limits.cpuWeight))))
    }

    func startCounting() {
        cpuBase = rawCPU ?? 0
        oomBase = rawOOMKills
        closePeak()
        let fd = open(dir + "/memory.peak", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return }
        // Before 6.12 the file takes no writes: the peak is then the cgroup's whole life.
        if Glibc.write(fd, "reset", 5) == 5 { peakDescriptor = fd } else { close(fd) }
    }

    private func closePeak() {
        if peakDescriptor >= 0 { close(peakDescriptor) }
        peakDescriptor = -1
    }

    private var peakBytes: UInt64? {
        guard peakDescriptor >= 0 else { return CgroupFile.readUInt(dir + "/memory.peak") }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(peakDescriptor, $0.baseAddress, 32, 0) }
        guard n > 0 else { return CgroupFile.readUInt(dir + "/memory.peak") }
        return UInt64(String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func stats() -> CgroupStats {
        CgroupStats(
            cpuUsageNs: cpuUsageNs(),
            memoryPeakBytes: peakBytes,
            oomKills: max(0, rawOOMKills - oomBase))
    }

    func cpuUsageNs() -> UInt64? { rawCPU.map { $0 >= cpuBase ? $0 - cpuBase : 0 } }

    func finish() throws(CgroupError) { try destroy() }

    func processes() -> [pid_t] { procs.pids() }

    /// cgroup.kill (Linux 5.14+) kills the whole tree at once, forks in flight included; older
    /// kernels get SIGKILL pid by pid until the cgroup is empty.
    func killAll() {
        if CgroupFile.exists(dir + "/cgroup.kill"), (try? CgroupFile.write(dir + "/cgroup.kill", "1")) != nil {
            // The kill is sent; the processes leave the cgroup as they die.
            for _ in 0..<200 where !processes().isEmpty { usleep(1000) }
            return
        }
        CgroupFile.killAll(dir + "/cgroup.procs")
    }

    func destroy() throws(CgroupError) {
        closePeak()
        defer { for file in [memoryEvents, cpuStat, procs] { file.close() } }
        if !CgroupFile.exists(dir) { return }
        killAll()
        for file in [memoryEvents, cpuStat, procs] { file.close() }
        try CgroupFile.removeDirectory(dir, procsFile: dir + "/cgroup.procs")
    }
}
