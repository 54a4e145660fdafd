import Glibc
import HumanText
import Synchronization

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
    /// The leaf beside the runs that spawners live in (`adoptSpawner`); never a run.
    static let spawnerLeaf = "spawner"
    /// The spawner's ids once adopted: each run's cgroup.procs is made theirs.
    private let spawnerOwner = SpawnerOwner()

    private final class SpawnerOwner: Sendable {
        let ids = Mutex<(uid: UInt32, gid: UInt32)?>(nil)
    }

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
        do throws(CgroupError) {
            try CgroupFile.makeDirectory(run.dir)
            try run.apply(limits)
            if let owner = spawnerOwner.ids.withLock({ $0 }) {
                // The spawner's clone3 into this cgroup writes it as far as the kernel is concerned.
                let procs = run.dir + "/cgroup.procs"
                if chown(procs, owner.uid, owner.gid) != 0 {
                    throw CgroupError(operation: "chown (for the spawner's CLONE_INTO_CGROUP)", path: procs, errno: errno)
                }
            }
        } catch {
            try? run.destroy()
            throw error
        }
        return run
    }

    public func existingRuns() -> [String] { CgroupFile.subdirectories(base).filter { $0 != Self.spawnerLeaf } }

    /// The spawner goes into the leaf `<base>/spawner`; the runs' parent's cgroup.procs (the
    /// common ancestor of the spawner's cgroup and every run's, which the kernel requires the
    /// mover to be able to write) and the leaf's are made the spawner's, and so is each run's
    /// (`create`). The server itself stays outside `<base>`: the spawner can move nothing of it.
    public func adoptSpawner(pid: pid_t, uid: UInt32, gid: UInt32) -> String? {
        let leaf = base + "/" + Self.spawnerLeaf
        do {
            try CgroupFile.makeDirectory(leaf)
            for procs in [base + "/cgroup.procs", leaf + "/cgroup.procs"] where chown(procs, uid, gid) != 0 {
                return "chown \(procs) to \(uid):\(gid): \(ErrnoName.describe(errno))"
            }
            try CgroupFile.write(leaf + "/cgroup.procs", String(pid))
        } catch {
            return "\(error)"
        }
        spawnerOwner.ids.withLock { $0 = (uid, gid) }
        return nil
    }

    public func remove(name: String) throws(CgroupError) {
        try CgroupV2Run(dir: base + "/" + name).destroy()
    }

    /// Nothing is kept for reuse on v2; the spawners' leaf goes once no spawner is left in it
    /// (another `Sandbox`'s may still be: then it stays, EBUSY).
    public func removeIdle() {
        _ = rmdir(base + "/" + Self.spawnerLeaf)
    }
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
        return CgroupFile.number(utf8: buffer[0..<n])
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
