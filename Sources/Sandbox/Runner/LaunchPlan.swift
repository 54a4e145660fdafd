import CSandbox
import Glibc

/// The policy's sandbox as one spawn request for the spawner: namespaces, the mount plan,
/// hostname, working directory and the seccomp program, laid out once (the spawner's wire
/// format, `cs_spawn_request`). Immutable once built, so one plan serves every launch of the
/// same `SandboxImage`.
final class LaunchPlan: Sendable {
    /// The request, its id field left 0 (the spawner client sets it per exchange).
    let request: [UInt8]
    /// Words for each mount-plan entry, to name what a failing stage was doing.
    let mountSubjects: [String]

    init(image: SandboxImage, seccomp: SeccompProgram?) throws(LaunchError) {
        var strings = StringTable()
        var header = cs_spawn_request()
        header.magic = CS_SPAWNER_MAGIC
        header.version = CS_SPAWNER_VERSION
        var flags = CS_CLONE_NEWUSER | CS_CLONE_NEWPID | CS_CLONE_NEWNS | CS_CLONE_NEWIPC | CS_CLONE_NEWUTS
        var options = Int32(CS_SPAWN_UNSHARE_CGROUP)
        if image.network == .none {
            flags |= CS_CLONE_NEWNET
            options |= Int32(CS_SPAWN_LOOPBACK_UP)
        }
        // The program's process loads its filter while the sandbox waits, when the filter lets
        // through what it calls after that (else once the run is there, before execve).
        if seccomp != nil && SeccompProgram.permitsWaitingProgram(image.seccomp) {
            options |= Int32(CS_SPAWN_SECCOMP_EARLY)
        }
        if seccomp?.notifies == true { options |= Int32(CS_SPAWN_SECCOMP_NOTIFY) }
        header.clone_flags = UInt32(flags)
        header.options = UInt32(options)
        header.base_dir = strings.add(image.scratchMountPoint)
        header.workdir = strings.add(image.filesystem.workdir)
        header.hostname = strings.add(image.hostname)
        // The root tmpfs holds mount points, symlinks and the delivered files, then turns read-only.
        header.root_options = strings.add("size=\((1 << 20) + image.maxDeliveredBytes),nr_inodes=16384,mode=0755")
        let (mounts, subjects) = try Self.mounts(image.filesystem, strings: &strings)
        guard mounts.count <= Int(CS_SPAWN_MAX_MOUNTS) else {
            throw LaunchError(stage: "prepare the sandbox", subject: "\(mounts.count) mounts (at most \(CS_SPAWN_MAX_MOUNTS))", errno: E2BIG)
        }
        header.n_mounts = UInt32(mounts.count)
        let filter = seccomp?.instructions ?? []
        header.seccomp_len = UInt32(filter.count)
        header.strings_bytes = UInt32(strings.bytes.count)

        var request: [UInt8] = []
        withUnsafeBytes(of: &header) { request.append(contentsOf: $0) }
        mounts.withUnsafeBytes { request.append(contentsOf: $0) }
        filter.withUnsafeBytes { request.append(contentsOf: $0) }
        request.append(contentsOf: strings.bytes)
        guard request.count <= Int(CS_SPAWN_MAX_REQUEST) else {
            throw LaunchError(stage: "prepare the sandbox", subject: "a spawn request of \(request.count) bytes (at most \(CS_SPAWN_MAX_REQUEST): fewer mounts or a shorter seccomp program)", errno: E2BIG)
        }
        self.request = request
        mountSubjects = subjects
    }

    /// The plan in mount order (parents before children), with words for each entry.
    private static func mounts(_ filesystem: FilesystemView, strings: inout StringTable) throws(LaunchError) -> ([cs_wire_mount], [String]) {
        var entries: [(cs_wire_mount, String, depth: Int)] = []
        func add(_ kind: cs_mount_kind, source: String?, target: String, data: String? = nil, isDir: Bool = false) {
            var m = cs_wire_mount()
            m.kind = Int32(kind.rawValue)
            m.is_dir = isDir ? 1 : 0
            m.source = source.map { strings.add($0) } ?? -1
            m.target = strings.add(target)
            m.data = data.map { strings.add($0) } ?? -1
            let showSource = source != nil && source != target && kind != CS_MOUNT_SYMLINK
            entries.append((m, showSource ? "\(target) (from \(source!))" : target, target.split(separator: "/").count))
        }
        for bind in filesystem.readOnly {
            var st = stat()
            if lstat(bind.source, &st) != 0 {
                let err = errno
                if bind.optional { continue }
                let subject = bind.target == bind.source ? bind.target : "\(bind.target) (from \(bind.source))"
                throw LaunchError(stage: "mount", subject: subject, errno: err)
            }
            if (st.st_mode & S_IFMT) == S_IFLNK {
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlink(bind.source, &buffer, Int(PATH_MAX)), err = errno
                guard n > 0 else { throw LaunchError(stage: "readlink", subject: bind.source, errno: err) }
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
        // A small tmpfs of its own at /dev/shm (POSIX shared memory and semaphores: Python's
        // multiprocessing Lock and Pool); its pages count in the memory limit like any tmpfs.
        add(CS_MOUNT_TMPFS, source: nil, target: "/dev/shm", data: "size=\(Self.devShmBytes),nr_inodes=4096,mode=1777")
        for (name, link) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
            add(CS_MOUNT_SYMLINK, source: link, target: "/dev/\(name)")
        }
        for tmpfs in filesystem.tmpfs {
            add(CS_MOUNT_TMPFS, source: nil, target: tmpfs.path, data: "size=\(tmpfs.sizeBytes),mode=1777")
        }
        // Parents first; the order among equals is the order above (stable sort).
        let ordered = entries.enumerated().sorted { a, b in
            a.element.depth != b.element.depth ? a.element.depth < b.element.depth : a.offset < b.offset
        }.map(\.element)
        return (ordered.map(\.0), ordered.map(\.1))
    }

    /// The size of every sandbox's /dev/shm (the memory limit applies first when it is lower).
    static let devShmBytes: UInt64 = 64 << 20

    /// What mount-plan entry `index` mounts.
    func subject(mount index: Int32) -> String? {
        mountSubjects.indices.contains(Int(index)) ? mountSubjects[Int(index)] : nil
    }
}

/// NUL-terminated strings laid end to end, each known by its offset.
private struct StringTable {
    var bytes: [UInt8] = []

    mutating func add(_ s: String) -> Int32 {
        let offset = Int32(bytes.count)
        bytes.append(contentsOf: s.utf8)
        bytes.append(0)
        return offset
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
    /// A trial run's (`RunRequest.learning`): its filter also shows connects and opens.
    var learning = false

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
