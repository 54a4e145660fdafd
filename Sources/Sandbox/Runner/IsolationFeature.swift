import Glibc
import HumanText

/// A piece of isolation the sandbox takes from the host's kernel. Confine refuses to run
/// without any of them unless an operator explicitly allows a weaker mode for that piece
/// (`allow_weaker` of `confine serve`), and then says so wherever a run is reported.
public enum IsolationFeature: String, CaseIterable, Sendable, Comparable {
    /// The sandbox's root, its id mapping (root inside is nobody outside) and its mounts.
    case userNamespaces = "user_namespaces"
    /// Memory, process and CPU-quota limits of the whole process tree, and killing it whole.
    case cgroups
    /// The system-call filter.
    case seccomp

    /// What runs lose without it.
    public var consequence: String {
        switch self {
        case .userNamespaces: return "no sandbox at all: the root, the id mapping and the mounts are built in a user namespace"
        case .cgroups: return "runs have no memory, process or CPU-quota limits (only rlimits and the wall-clock deadline)"
        case .seccomp: return "runs' system calls are not filtered"
        }
    }

    /// Whether Confine can run without it at all (the sandbox is built in a user namespace).
    public var canBeWaived: Bool { self != .userNamespaces }

    public static func < (a: IsolationFeature, b: IsolationFeature) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Tries each isolation feature on this host: what is missing, each with the reason. `live`
/// asks the kernel; tests inject their own answers to simulate a host that lacks something.
public struct HostFeatureProbe: Sendable {
    public var missing: @Sendable (SandboxConfiguration) -> [IsolationFeature: String]

    public init(missing: @escaping @Sendable (SandboxConfiguration) -> [IsolationFeature: String]) {
        self.missing = missing
    }

    /// By trying: a user namespace unshared in a forked child, the cgroup hierarchy detected
    /// and Confine's parent cgroup written, the seccomp filter mode and a filter built.
    public static let live = HostFeatureProbe { configuration in
        var missing: [IsolationFeature: String] = [:]
        let code = HostProbe.userNamespaceErrno()
        if code != 0 { missing[.userNamespaces] = "unshare(CLONE_NEWUSER) fails: \(ErrnoName.describe(code))" }
        do {
            let cgroups = try CgroupDetection.detect(parent: configuration.cgroupParent, groupWeight: configuration.groupCPUWeight)
            let unwritable = cgroups.baseDirectories.filter { access($0, W_OK) != 0 }
            if !unwritable.isEmpty { missing[.cgroups] = "cannot write \(unwritable.joined(separator: ", "))" }
        } catch {
            missing[.cgroups] = "\(error)"
        }
        if !(CgroupFile.readString("/proc/self/status") ?? "").contains("\nSeccomp:") {
            missing[.seccomp] = "the kernel has no seccomp (no Seccomp: line in /proc/self/status)"
        } else {
            do { _ = try SeccompProgram.compile(SeccompPolicy()) } catch {
                missing[.seccomp] = "libseccomp cannot build a filter: \(error)"
            }
        }
        return missing
    }
}
