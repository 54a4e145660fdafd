import Glibc
import Synchronization

/// Where a process's runs go on a cgroup2 hierarchy: the cgroup that becomes the parent of
/// `<parent>/<run>`.
///
/// - In the true root cgroup (a host with no cgroup namespace, as root): the root itself, as
///   on cgroup v1 (`/sys/fs/cgroup/confine/<run>`).
/// - Anywhere else (a systemd unit with `Delegate=yes`, a container's cgroup namespace, a
///   user's delegated subtree): the process's own cgroup. The "no internal processes" rule
///   forbids enabling controllers for children of a cgroup that holds processes, so the
///   process first moves itself into the leaf `<own>/server`, then enables cpu, memory and
///   pids in `<own>/cgroup.subtree_control`: runs go to `<own>/<parent>/<run>`.
/// - Already in `<own>/server` (systemd's `DelegateSubgroup=server`), with `<own>` empty and
///   writable: `<own>` without a move.
/// - When the own cgroup holds other processes too (a login session's scope), it cannot be
///   made an inner node: the true root is used if this process may write it (root, no cgroup
///   namespace), else the failure names the cgroup and the processes in the way.
///
/// Decided once per process (the move is not repeated by a second `Sandbox`).
public enum CgroupV2Delegation {
    /// The leaf the process moves itself into.
    public static let serverLeaf = "server"

    private static let decided = Mutex<[String: String]>([:])

    /// The cgroup (a directory under `mount`) to hold Confine's run cgroups, moving this
    /// process into `<own>/server` first when that is what delegation requires.
    public static func home(mount: String, controllers: Set<String>) throws(CgroupError) -> String {
        if let known = decided.withLock({ $0[mount] }) { return known }
        let selfPath = "/proc/self/cgroup"
        guard let own = ownPath(CgroupFile.readString(selfPath) ?? "") else {
            throw CgroupError(operation: "find this process's cgroup2 path (a \"0::/…\" line) in", path: selfPath, errno: ENOENT)
        }
        let home = try settle(mount: mount, ownPath: own, pid: getpid(), controllers: controllers)
        decided.withLock { $0[mount] = home }
        return home
    }

    /// The path of the cgroup2 line ("0::/system.slice/confine.service") of /proc/PID/cgroup.
    public static func ownPath(_ text: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix("0::") {
            return String(line.dropFirst(3))
        }
        return nil
    }

    /// The decision itself, on the files of `mount` (a real cgroup2 mount, or a directory laid
    /// out as one in tests): `ownPath` is this process's cgroup relative to the mount.
    static func settle(mount: String, ownPath: String, pid: pid_t, controllers: Set<String>) throws(CgroupError) -> String {
        let trimmed = ownPath.hasSuffix("/") ? String(ownPath.dropLast()) : ownPath
        let own = mount + trimmed
        // The true root has no cgroup.type; a cgroup namespace's root is a real cgroup with one.
        let mountIsTrueRoot = !CgroupFile.exists(mount + "/cgroup.type")
        if trimmed.isEmpty && mountIsTrueRoot { return mount }

        // Already in a leaf named `server` of an otherwise empty, writable cgroup: placed there by
        // systemd (DelegateSubgroup=server, systemd 254+) or by this very code in an earlier
        // process that handed its cgroup down (exec): that parent is the delegated one.
        if trimmed.hasSuffix("/" + serverLeaf) {
            let parent = String(own.dropLast(serverLeaf.count + 1))
            if parent.count > mount.count, CgroupFile.exists(parent + "/cgroup.procs"),
               CgroupFile.pids(parent + "/cgroup.procs").isEmpty,
               access(parent + "/cgroup.subtree_control", W_OK) == 0 {
                return parent
            }
        }
        let others = CgroupFile.pids(own + "/cgroup.procs").filter { $0 != pid }
        if !others.isEmpty {
            if mountIsTrueRoot && access(mount + "/cgroup.subtree_control", W_OK) == 0 { return mount }
            let shown = others.prefix(5).map(String.init).joined(separator: ", ") + (others.count > 5 ? ", …" : "")
            throw CgroupError(
                operation: "delegate (it also holds the processes \(shown): run Confine as the only process of a cgroup of its own, e.g. a systemd unit with Delegate=yes)",
                path: own, errno: EBUSY)
        }
        let available = Set((CgroupFile.readString(own + "/cgroup.controllers") ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
        let lacking = controllers.subtracting(available).sorted()
        if !lacking.isEmpty {
            throw CgroupError(
                operation: "delegate (the controller(s) \(lacking.joined(separator: ", ")) are not enabled for it by its parent: systemd Delegate=yes, or echo +\(lacking.joined(separator: " +")) > the parent's cgroup.subtree_control)",
                path: own, errno: EOPNOTSUPP)
        }
        let leaf = own + "/" + serverLeaf
        try CgroupFile.makeDirectory(leaf)
        try CgroupFile.write(leaf + "/cgroup.procs", String(pid))
        return own
    }
}
