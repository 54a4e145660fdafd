/// A sandbox policy: everything an operator decides about how a program is confined.
///
/// Policies are loaded from YAML files (`policies/*.yaml`) by `PolicyLoader`, which validates
/// every field; a `Policy` value therefore always describes a runnable, coherent sandbox.
public struct Policy: Sendable, Equatable {
    /// The policy's name: the file's base name (`default` for `policies/default.yaml`).
    public var name: String
    /// Free text for operators: what the policy is for.
    public var description: String
    /// Resource limits of one run.
    public var limits: Limits
    /// Which limits a single run may override, and then only with a tighter value.
    public var overridable: Set<LimitName>
    /// Network mode.
    public var network: NetworkMode
    /// The filesystem the program sees.
    public var filesystem: FilesystemView
    /// The seccomp filter.
    public var seccomp: SeccompPolicy
    /// The program's environment.
    public var environment: EnvironmentPolicy
    /// What happens when a stream exceeds its capture cap.
    public var outputOverflow: OutputOverflow
    /// Hostname inside the UTS namespace.
    public var hostname: String

    public init(
        name: String, description: String = "", limits: Limits = Limits(),
        overridable: Set<LimitName> = [], network: NetworkMode = .none,
        filesystem: FilesystemView = FilesystemView(), seccomp: SeccompPolicy = SeccompPolicy(),
        environment: EnvironmentPolicy = EnvironmentPolicy(), outputOverflow: OutputOverflow = .truncate,
        hostname: String = "confine"
    ) {
        self.name = name
        self.description = description
        self.limits = limits
        self.overridable = overridable
        self.network = network
        self.filesystem = filesystem
        self.seccomp = seccomp
        self.environment = environment
        self.outputOverflow = outputOverflow
        self.hostname = hostname
    }
}

/// The name of one limit, as written in policy files and run overrides.
public enum LimitName: String, Sendable, CaseIterable, Codable, Comparable {
    case wallTime = "wall_time"
    case cpuTime = "cpu_time"
    case memory
    case processes
    case stdout
    case stderr
    case openFiles = "open_files"
    case fileSize = "file_size"
    case stack
    case cpuQuota = "cpu_quota"
    case cpuWeight = "cpu_weight"
    case inotifyInstances = "inotify_instances"
    case inotifyWatches = "inotify_watches"
    case messageQueueBytes = "message_queue_bytes"
    case pendingSignals = "pending_signals"

    public static func < (a: LimitName, b: LimitName) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Resource limits of one run. Times are milliseconds, sizes bytes.
public struct Limits: Sendable, Equatable {
    /// Wall-clock deadline.
    public var wallTimeMs: Int64 = 10_000
    /// CPU time of the whole process tree (cgroup accounting, plus RLIMIT_CPU per process).
    public var cpuTimeMs: Int64 = 5_000
    /// Memory of the whole tree including tmpfs pages; swap is never allowed.
    public var memoryBytes: UInt64 = 256 << 20
    /// Processes and threads alive at once (cgroup pids).
    public var processes: Int = 64
    /// Bytes of stdout kept; the rest is drained and counted.
    public var stdoutBytes: UInt64 = 1 << 20
    /// Bytes of stderr kept; the rest is drained and counted.
    public var stderrBytes: UInt64 = 1 << 20
    /// RLIMIT_NOFILE.
    public var openFiles: Int = 256
    /// RLIMIT_FSIZE: the largest file a process may write.
    public var fileSizeBytes: UInt64 = 64 << 20
    /// RLIMIT_STACK.
    public var stackBytes: UInt64 = 8 << 20
    /// CPU bandwidth in cores (cgroup quota), nil for no quota.
    public var cpuQuota: Double? = 1.0
    /// Relative CPU weight, 1...10000 (cgroup v2 scale; 100 is the default of an ordinary cgroup).
    /// Sandboxed work gets less than the server by default.
    public var cpuWeight: Int = 50
    /// Ceilings on per-user kernel objects, this sandbox's own (not shared with the host or other
    /// sandboxes): inotify instances and watches (its user namespace's /proc/sys/user limits),
    /// bytes of POSIX message queues (RLIMIT_MSGQUEUE) and queued signals (RLIMIT_SIGPENDING).
    public var inotifyInstances: Int = 16
    public var inotifyWatches: Int = 8192
    public var messageQueueBytes: UInt64 = 128 << 10
    public var pendingSignals: Int = 1024

    public init() {}
}

/// How a sandbox reaches the network.
public enum NetworkMode: String, Sendable, Equatable, CaseIterable {
    /// A fresh network namespace with only loopback, which is up.
    case none
    /// The host's network namespace.
    case host
}

/// What happens when a stream passes its capture cap.
public enum OutputOverflow: String, Sendable, Equatable, CaseIterable {
    /// Keep the first bytes, drain and count the rest; the run goes on.
    case truncate
    /// Kill the run; its verdict is `output_limit`.
    case kill
}

/// The filesystem a sandboxed program sees: a fresh, read-only root holding only what is listed.
public struct FilesystemView: Sendable, Hashable {
    /// Host paths bound read-only (same path inside unless `target` differs).
    public var readOnly: [BindMount] = []
    /// Size-limited tmpfs mounts: the only writable places.
    public var tmpfs: [TmpfsMount] = [TmpfsMount(path: "/tmp", sizeBytes: 64 << 20)]
    /// Device nodes offered under /dev.
    public var devices: [DeviceNode] = [.null, .zero, .urandom]
    /// The program's working directory (inside the sandbox).
    public var workdir: String = "/tmp"

    public init(readOnly: [BindMount] = [], tmpfs: [TmpfsMount] = [TmpfsMount(path: "/tmp", sizeBytes: 64 << 20)],
                devices: [DeviceNode] = [.null, .zero, .urandom], workdir: String = "/tmp") {
        self.readOnly = readOnly
        self.tmpfs = tmpfs
        self.devices = devices
        self.workdir = workdir
    }
}

/// A host path bound read-only into the sandbox.
public struct BindMount: Sendable, Hashable {
    /// Absolute host path.
    public var source: String
    /// Absolute path inside the sandbox.
    public var target: String
    /// When true, a source missing on this host is skipped instead of refused.
    public var optional: Bool

    public init(source: String, target: String? = nil, optional: Bool = false) {
        self.source = source
        self.target = target ?? source
        self.optional = optional
    }
}

/// A writable tmpfs inside the sandbox.
public struct TmpfsMount: Sendable, Hashable {
    public var path: String
    public var sizeBytes: UInt64
    public init(path: String, sizeBytes: UInt64) {
        self.path = path
        self.sizeBytes = sizeBytes
    }
}

/// Device nodes a policy may offer (each bound from the host's node).
public enum DeviceNode: String, Sendable, Equatable, CaseIterable {
    case null, zero, urandom, random, full
}

/// The seccomp filter of a policy.
///
/// In `allow_list` mode (the default, and the shipped policies') only the system calls of a
/// built-in allow list (`SeccompProgram.builtInAllowList`) plus `allow` are permitted: any other,
/// including one newer than the installed libseccomp, fails with `ENOSYS` (so that libc falls
/// back), and the dangerous ones (`SeccompProgram.builtInDenyList` less `allow`, plus `deny`)
/// get `action`. In `deny_list` mode every system call not denied is permitted. In both modes
/// sockets may be created only in `socket_families`, `personality` may only query or keep the
/// default persona, `clone` may not create namespaces and `clone3` fails with `ENOSYS`.
public struct SeccompPolicy: Sendable, Hashable {
    /// Whether unlisted system calls are refused (allow list) or permitted (deny list).
    public var mode: SeccompMode = .allowList
    /// What a denied syscall does.
    public var action: SeccompAction = .errno(1)  // EPERM
    /// Syscalls denied in addition to the built-in list.
    public var deny: [String] = []
    /// Syscalls removed from the built-in deny list, and (allow list) added to the allow list:
    /// an operator's explicit, reviewed choice.
    public var allow: [String] = []
    /// The address families `socket` and `socketpair` may use; any other fails with
    /// `EAFNOSUPPORT` (`AF_VSOCK`, `AF_PACKET`, … are never allowed).
    public var socketFamilies: [SocketFamily] = SocketFamily.defaults

    public init(mode: SeccompMode = .allowList, action: SeccompAction = .errno(1), deny: [String] = [], allow: [String] = [],
                socketFamilies: [SocketFamily] = SocketFamily.defaults) {
        self.mode = mode
        self.action = action
        self.deny = deny
        self.allow = allow
        self.socketFamilies = socketFamilies
    }
}

/// How a seccomp filter treats a system call it does not list.
public enum SeccompMode: String, Sendable, Hashable, CaseIterable {
    /// Refused (`ENOSYS`) unless allowed: the built-in allow list plus `allow`.
    case allowList = "allow_list"
    /// Permitted unless denied: the built-in deny list less `allow`, plus `deny`.
    case denyList = "deny_list"
}

/// An address family a policy may let sockets be created in.
public enum SocketFamily: String, Sendable, Hashable, CaseIterable, Comparable {
    /// `AF_UNIX`: local sockets (also `socketpair`).
    case unix
    /// `AF_INET`.
    case inet
    /// `AF_INET6`.
    case inet6
    /// `AF_NETLINK`, protocol `NETLINK_ROUTE` only (addresses and routes, as getaddrinfo asks).
    case netlink

    /// `[unix, inet, inet6]`.
    public static let defaults: [SocketFamily] = [.unix, .inet, .inet6]

    /// The `AF_*` number.
    public var number: Int32 {
        switch self {
        case .unix: return 1
        case .inet: return 2
        case .inet6: return 10
        case .netlink: return 16
        }
    }

    public static func < (a: SocketFamily, b: SocketFamily) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// The action for a denied syscall.
public enum SeccompAction: Sendable, Hashable {
    /// Fail the call with this errno.
    case errno(Int32)
    /// Kill the process (SIGSYS).
    case kill
}

/// The program's environment: nothing of the server's reaches it unless named here.
public struct EnvironmentPolicy: Sendable, Equatable {
    /// Variables every run gets.
    public var set: [String: String] = [
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": "/tmp",
    ]
    /// Names a job or a run may set on top (exact names, or prefixes ending in `*`).
    public var allow: [String] = []

    public init(set: [String: String]? = nil, allow: [String] = []) {
        if let set { self.set = set }
        self.allow = allow
    }

    /// Whether a run may set the variable `name`.
    public func allows(_ name: String) -> Bool {
        allow.contains { pattern in
            pattern.hasSuffix("*") ? name.hasPrefix(pattern.dropLast()) : pattern == name
        }
    }
}
