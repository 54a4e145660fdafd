import Glibc

/// Host-side settings of a `Sandbox`, the same for every run (policies hold the per-run ones).
public struct SandboxConfiguration: Sendable {
    /// The unprivileged host ids that sandboxes' root maps to (never host root): each live
    /// sandbox has one of its own, as uid and as gid, from `hostIDFirst` on (`hostIDCount` of
    /// them), so that per-user kernel counters (pipe buffers, epoll watches, processes) are
    /// per sandbox (`HostIDs`). The default range, 0x70000000 and up, lies above the ranges
    /// systemd and /etc/subuid conventionally hand out (users, containers).
    public var hostIDFirst: UInt32 = SandboxConfiguration.defaultHostIDFirst
    public var hostIDCount: UInt32 = 65_536
    public static let defaultHostIDFirst: UInt32 = 0x7000_0000
    /// "nobody", the kernel's overflow id (what an unmapped id shows as in a user namespace),
    /// shared with other daemons: never the spawner's.
    public static let overflowID: UInt32 = 65534

    /// Why an id cannot be the spawner's.
    public static func spawnerIDRule(_ sandboxIDs: ClosedRange<UInt32>) -> String {
        "must differ from the ids sandboxed programs run as on the host (\(sandboxIDs.lowerBound)…\(sandboxIDs.upperBound)), "
            + "since the spawner owns their user namespaces, and from \(overflowID) (nobody, the kernel's overflow id)"
    }

    /// The host ids of sandboxes, as a range.
    /// (Cut at the largest id: a range past it is refused by `Sandbox`, never wrapped around.)
    public var hostIDs: ClosedRange<UInt32> {
        hostIDFirst...UInt32(min(UInt64(hostIDFirst) + UInt64(max(1, hostIDCount)) - 1, UInt64(UInt32.max)))
    }
    /// The unprivileged host uid and gid the spawner runs as: the owner of every sandbox's user
    /// namespace, so that the per-user kernel objects sandboxes hold are charged to it and
    /// never to host root. Must lie outside `hostIDs` (and be neither root nor the server's).
    public var spawnerUID: UInt32 = 65533
    public var spawnerGID: UInt32 = 65533
    /// The `confine-spawner` executable: $CONFINE_SPAWNER when set, else beside the running
    /// executable (`confine`, the benchmarks, the test bundle).
    public var spawnerPath: String = SandboxConfiguration.defaultSpawnerPath
    /// Directory under each cgroup hierarchy that holds one cgroup per run.
    public var cgroupParent: String = "confine"
    /// CPU weight of all sandboxes together against their siblings — the server itself and the
    /// rest of the host (v2 `cpu.weight` scale: 1…10000, 100 is an ordinary process group; v1
    /// `cpu.shares` = weight × 10.24). Below 100 so that the server stays responsive while every
    /// run burns CPU (measured here with two burners: reads' p99 5.1–5.9 ms at 100, 3.1–4.0 ms
    /// at 12.5). Each run's own `cpu_weight` divides this share among the runs. Defaults to
    /// $CONFINE_SANDBOX_CPU_WEIGHT when set (`make test` sets 100: there the test runner itself
    /// is the busiest "server", and sandboxed tests must not be starved by it), else 25.
    public var groupCPUWeight: Int = SandboxConfiguration.defaultGroupCPUWeight

    /// The group weight when nothing else is said.
    public static let builtInGroupCPUWeight = 25

    /// $CONFINE_SANDBOX_CPU_WEIGHT (1…10000) when set and valid, else `builtInGroupCPUWeight`.
    public static var defaultGroupCPUWeight: Int {
        guard let text = getenv("CONFINE_SANDBOX_CPU_WEIGHT").map({ String(cString: $0) }), let weight = Int(text),
              (1...10_000).contains(weight) else { return builtInGroupCPUWeight }
        return weight
    }
    /// Whether runs must have a cgroup. `.required` refuses to start without one; `.disabled`
    /// (a weaker mode an operator must ask for) runs without memory, pids and CPU-quota limits.
    public var cgroups: CgroupRequirement = .required
    /// Whether runs get their policy's system-call filter. `.disabled` is a weaker mode an
    /// operator must ask for (a host without seccomp): system calls are not filtered.
    public var seccomp: SeccompRequirement = .required
    /// An existing host directory over which each run mounts its scratch tmpfs, inside its
    /// own mount namespace (the host never sees it).
    public var scratchMountPoint: String = "/tmp"
    /// Warm sandboxes kept ready per recently used policy image (0: build each at launch).
    /// They take the slow parts — namespaces, the cgroup move, the root — off the critical path.
    /// Four, not two: with one worker a core, two left a run built on its own path once in four
    /// (end to end, python +4 %, bash +2 %); an idle one is two small processes, namespaces and
    /// a (reused) cgroup.
    public var warmPoolSize: Int = 4
    /// How many policy images are kept warm at once (least recently used ones are dropped).
    public var warmPoolImages: Int = 8
    /// The most bytes of files one run may deliver into its sandbox.
    public var maxDeliveredBytes: UInt64 = 64 << 20
    /// How often the supervisor samples the cgroup's CPU time to enforce the total CPU limit.
    public var cpuCheckIntervalMs: Int = 50
    /// Whether refused calls are reported (`RunResult.denied`): the filter's refusals become
    /// user notifications that the run's supervisor answers and counts. false: the filter
    /// answers them itself, unreported (the launch benchmark's comparison).
    public var reportRefusals = true
    /// The most refused calls one run's supervisor answers per second (a token bucket holding
    /// as many): a program refusing itself in a loop waits for its answers, so it costs the
    /// server a bounded share of a core. Trial runs (`RunRequest.learning`) are not throttled.
    public var refusalsPerSecond = 2000

    public init() {}

    /// $CONFINE_SPAWNER, else `confine-spawner` in the directory of this process's executable.
    public static var defaultSpawnerPath: String {
        if let set = getenv("CONFINE_SPAWNER").map({ String(cString: $0) }), !set.isEmpty { return set }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, Int(PATH_MAX))
        guard n > 0 else { return "confine-spawner" }
        let exe = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let directory = exe.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return directory + "/confine-spawner"
    }

    /// The isolation runs go without under this configuration (empty: all of it).
    public var weakenedIsolation: [IsolationFeature] {
        var weakened: [IsolationFeature] = []
        if cgroups == .disabled { weakened.append(.cgroups) }
        if seccomp == .disabled { weakened.append(.seccomp) }
        return weakened
    }
}

/// Whether a sandbox insists on cgroups.
public enum CgroupRequirement: String, Sendable {
    case required
    case disabled
}

/// Whether a sandbox filters its runs' system calls.
public enum SeccompRequirement: String, Sendable {
    case required
    case disabled
}

/// A failure to make a `Sandbox` usable on this host.
public enum SandboxError: Error, CustomStringConvertible {
    case cgroup(CgroupError)
    case spawner(SpawnerError)
    /// The configuration itself is wrong (which setting, why).
    case configuration(String)
    case seccomp(SeccompError)
    case invalidRequest(String)

    public var description: String {
        switch self {
        case .cgroup(let e): return "\(e) — Confine needs a writable cgroup hierarchy (run as root, or delegate a cgroup v2 subtree)"
        case .seccomp(let e): return e.description
        case .spawner(let e): return e.description
        case .configuration(let message): return message
        case .invalidRequest(let message): return message
        }
    }
}
