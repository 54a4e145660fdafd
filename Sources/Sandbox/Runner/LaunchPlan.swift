import CSandbox
import Glibc

/// The policy's sandbox, laid out in C memory for the child before clone(): namespaces, the
/// mount plan, hostname, working directory and the seccomp program. Immutable once built,
/// so one plan serves every launch of the same `SandboxImage` (the child gets a copy of it).
final class LaunchPlan: @unchecked Sendable {
    /// The configuration without descriptors; `config(...)` adds them per launch.
    private var base = cs_config()
    /// Words for each mount-plan entry, to name what a failing stage was doing.
    private(set) var mountSubjects: [String] = []
    private var allocations: [UnsafeMutableRawPointer] = []

    init(image: SandboxImage, seccomp: SeccompProgram?) throws(LaunchError) {
        base.pdeathsig = SIGKILL
        var flags = CS_CLONE_NEWUSER | CS_CLONE_NEWPID | CS_CLONE_NEWNS | CS_CLONE_NEWIPC | CS_CLONE_NEWUTS
        if image.network == .none {
            flags |= CS_CLONE_NEWNET
            base.loopback_up = 1
        }
        base.clone_flags = Int32(flags)
        base.unshare_cgroup = 1
        base.base_dir = UnsafePointer(cString(image.scratchMountPoint))
        base.workdir = UnsafePointer(cString(image.filesystem.workdir))
        base.hostname = UnsafePointer(cString(image.hostname))
        // The root tmpfs holds mount points, symlinks and the delivered files, then turns read-only.
        base.root_options = UnsafePointer(cString("size=\((1 << 20) + image.maxDeliveredBytes),nr_inodes=16384,mode=0755"))
        try buildMounts(image.filesystem)
        if let seccomp {
            let buffer = allocate(sock_filter.self, count: seccomp.instructions.count)
            buffer.initialize(from: seccomp.instructions, count: seccomp.instructions.count)
            base.seccomp_filter = UnsafePointer(buffer)
            base.seccomp_len = UInt16(seccomp.instructions.count)
        }
    }

    /// The plan in mount order: parents before children.
    private func buildMounts(_ filesystem: FilesystemView) throws(LaunchError) {
        var entries: [(cs_mount, String)] = []
        func add(_ kind: cs_mount_kind, source: String?, target: String, data: String? = nil, isDir: Bool = false) {
            var m = cs_mount()
            m.kind = Int32(kind.rawValue)
            m.is_dir = isDir ? 1 : 0
            m.source = source.map { UnsafePointer(cString($0)) }
            m.target = UnsafePointer(cString(target))
            m.data = data.map { UnsafePointer(cString($0)) }
            let showSource = source != nil && source != target && kind != CS_MOUNT_SYMLINK
            entries.append((m, showSource ? "\(target) (from \(source!))" : target))
        }
        for bind in filesystem.readOnly {
            var st = stat()
            if lstat(bind.source, &st) != 0 {
                if bind.optional { continue }
                let subject = bind.target == bind.source ? bind.target : "\(bind.target) (from \(bind.source))"
                throw LaunchError(stage: "mount", subject: subject, errno: errno)
            }
            if (st.st_mode & S_IFMT) == S_IFLNK {
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlink(bind.source, &buffer, Int(PATH_MAX))
                guard n > 0 else { throw LaunchError(stage: "readlink", subject: bind.source, errno: errno) }
                let link = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                add(CS_MOUNT_SYMLINK, source: link, target: bind.target)
            } else {
                add(CS_MOUNT_BIND_RO, source: bind.source, target: bind.target, isDir: (st.st_mode & S_IFMT) == S_IFDIR)
            }
        }
        add(CS_MOUNT_PROC, source: nil, target: "/proc")
        add(CS_MOUNT_DEV, source: nil, target: "/dev", data: "size=64k,nr_inodes=64,mode=0755")
        for node in filesystem.devices {
            add(CS_MOUNT_DEV_NODE, source: "/dev/\(node.rawValue)", target: "/dev/\(node.rawValue)")
        }
        for (name, link) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
            add(CS_MOUNT_SYMLINK, source: link, target: "/dev/\(name)")
        }
        for tmpfs in filesystem.tmpfs {
            add(CS_MOUNT_TMPFS, source: nil, target: tmpfs.path, data: "size=\(tmpfs.sizeBytes),mode=1777")
        }
        // Parents first; the order among equals is the order above (stable sort).
        func depth(_ m: cs_mount) -> Int { String(cString: m.target).split(separator: "/").count }
        let ordered = entries.enumerated().sorted { a, b in
            let da = depth(a.element.0), db = depth(b.element.0)
            return da != db ? da < db : a.offset < b.offset
        }.map(\.element)
        let buffer = allocate(cs_mount.self, count: ordered.count)
        buffer.initialize(from: ordered.map(\.0), count: ordered.count)
        base.mounts = UnsafePointer(buffer)
        base.n_mounts = Int32(ordered.count)
        mountSubjects = ordered.map(\.1)
    }

    /// What mount-plan entry `index` mounts.
    func subject(mount index: Int32) -> String? {
        mountSubjects.indices.contains(Int(index)) ? mountSubjects[Int(index)] : nil
    }

    /// The configuration for one launch, with the child's ends of its descriptors.
    func config(stdin: Int32, stdout: Int32, stderr: Int32, control: Int32, report: Int32) -> cs_config {
        var c = base
        c.stdin_fd = stdin
        c.stdout_fd = stdout
        c.stderr_fd = stderr
        c.control_fd = control
        c.report_fd = report
        return c
    }

    private func cString(_ s: String) -> UnsafeMutablePointer<CChar> {
        let p = strdup(s)!
        allocations.append(UnsafeMutableRawPointer(p))
        return p
    }

    /// malloc'ed, zeroed memory for `count` values of `type`, freed with the plan.
    private func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let raw = calloc(max(1, count), MemoryLayout<T>.stride)!
        allocations.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(1, count))
    }

    deinit {
        for p in allocations { free(p) }
    }
}

/// What makes two runs' sandboxes interchangeable before their program is known: everything
/// of the policy except limits and environment (those travel with the run). Warm sandboxes
/// are pooled by image.
struct SandboxImage: Hashable, Sendable {
    var filesystem: FilesystemView
    var network: NetworkMode
    var hostname: String
    var seccomp: SeccompPolicy
    var scratchMountPoint: String
    var maxDeliveredBytes: UInt64

    init(policy: Policy, configuration: SandboxConfiguration) {
        filesystem = policy.filesystem
        network = policy.network
        hostname = policy.hostname
        seccomp = policy.seccomp
        scratchMountPoint = configuration.scratchMountPoint
        maxDeliveredBytes = configuration.maxDeliveredBytes
    }
}

/// A failure while preparing a launch in the parent: stage, subject and errno.
struct LaunchError: Error {
    var stage: String
    var subject: String?
    var errno: Int32

    var setupFailure: SetupFailure { SetupFailure(stage: stage, subject: subject, errno: errno) }
}
