import CSandbox
import Glibc

/// Everything the child needs, laid out in C memory before clone(): argv, envp, candidate
/// executable paths, the mount plan, rlimits and the seccomp program. Owns that memory (and
/// the memfds of delivered files) until `release()`.
final class LaunchPlan {
    private(set) var config = cs_config()
    /// Words for each mount-plan entry and rlimit, to name what a failing stage was doing.
    private(set) var mountSubjects: [String] = []
    private(set) var rlimitSubjects: [String] = []
    private var allocations: [UnsafeMutableRawPointer] = []
    private(set) var fileDescriptors: [Int32] = []

    /// Builds the plan. Failures here are the request's own (a file that cannot be delivered).
    init(policy: Policy, command: [String], environment: [String: String], files: [SandboxFile],
         seccomp: SeccompProgram?, configuration: SandboxConfiguration, bare: Bool) throws(LaunchError) {
        config.bare = bare ? 1 : 0
        config.pdeathsig = SIGKILL
        var flags = CS_CLONE_NEWUSER | CS_CLONE_NEWPID | CS_CLONE_NEWNS | CS_CLONE_NEWIPC | CS_CLONE_NEWUTS
        if policy.network == .none {
            flags |= CS_CLONE_NEWNET
            config.loopback_up = 1
        }
        config.clone_flags = Int32(flags)
        config.unshare_cgroup = 1
        config.base_dir = UnsafePointer(cString(configuration.scratchMountPoint))
        config.workdir = UnsafePointer(cString(policy.filesystem.workdir))
        config.hostname = UnsafePointer(cString(policy.hostname))

        // Environment: the policy's, then the run's additions, sorted for a stable envp.
        var env = policy.environment.set
        for (key, value) in environment { env[key] = value }
        let envp = env.keys.sorted().map { "\($0)=\(env[$0]!)" }
        config.envp = UnsafePointer(stringArray(envp))
        config.argv = UnsafePointer(stringArray(command))

        // Candidate executables: an absolute or relative path as is, else each PATH entry.
        var candidates: [String]
        let program = command.first ?? ""
        if program.contains("/") {
            candidates = [program]
        } else {
            let path = env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
            candidates = path.split(separator: ":").map { "\($0)/\(program)" }
        }
        let paths = allocate(UnsafePointer<CChar>?.self, count: candidates.count)
        for (i, candidate) in candidates.enumerated() { paths[i] = UnsafePointer(cString(candidate)) }
        config.exec_paths = UnsafePointer(paths)
        config.n_exec_paths = Int32(candidates.count)

        try buildMounts(policy: policy, files: files)
        buildRlimits(policy.limits)
        if let seccomp {
            let buffer = allocate(sock_filter.self, count: seccomp.instructions.count)
            buffer.initialize(from: seccomp.instructions, count: seccomp.instructions.count)
            config.seccomp_filter = UnsafePointer(buffer)
            config.seccomp_len = UInt16(seccomp.instructions.count)
        }
    }

    /// The plan in mount order: parents before children, then the program's files.
    private func buildMounts(policy: Policy, files: [SandboxFile]) throws(LaunchError) {
        var entries: [(cs_mount, String)] = []
        func add(_ kind: cs_mount_kind, source: String?, target: String, data: String? = nil, isDir: Bool = false, fd: Int32 = -1) {
            var m = cs_mount()
            m.kind = Int32(kind.rawValue)
            m.is_dir = isDir ? 1 : 0
            m.fd = fd
            m.source = source.map { UnsafePointer(cString($0)) }
            m.target = UnsafePointer(cString(target))
            m.data = data.map { UnsafePointer(cString($0)) }
            let subject = source.map { target == $0 || kind == CS_MOUNT_SYMLINK ? target : "\(target) (from \($0))" } ?? target
            entries.append((m, subject))
        }
        for bind in policy.filesystem.readOnly {
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
                add(CS_MOUNT_SYMLINK, source: String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self), target: bind.target)
            } else {
                add(CS_MOUNT_BIND_RO, source: bind.source, target: bind.target, isDir: (st.st_mode & S_IFMT) == S_IFDIR)
            }
        }
        add(CS_MOUNT_PROC, source: nil, target: "/proc")
        add(CS_MOUNT_DEV, source: nil, target: "/dev", data: "size=64k,nr_inodes=64,mode=0755")
        for node in policy.filesystem.devices {
            add(CS_MOUNT_DEV_NODE, source: "/dev/\(node.rawValue)", target: "/dev/\(node.rawValue)")
        }
        for (name, link) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
            add(CS_MOUNT_SYMLINK, source: link, target: "/dev/\(name)")
        }
        for tmpfs in policy.filesystem.tmpfs {
            add(CS_MOUNT_TMPFS, source: nil, target: tmpfs.path, data: "size=\(tmpfs.sizeBytes),mode=1777")
        }
        var filesBytes: UInt64 = 0
        for file in files {
            if let tmpfs = policy.filesystem.tmpfs.first(where: { file.path == $0.path || file.path.hasPrefix($0.path + "/") }) {
                throw LaunchError(stage: "place file", subject: "\(file.path) (inside the writable tmpfs \(tmpfs.path); delivered files must stay read-only)", errno: EINVAL)
            }
            let fd = file.contents.withUnsafeBytes { bytes in
                cs_sealed_memfd("confine-file", bytes.baseAddress, bytes.count, file.executable ? 1 : 0)
            }
            guard fd >= 0 else { throw LaunchError(stage: "memfd", subject: file.path, errno: -fd) }
            fileDescriptors.append(fd)
            add(CS_MOUNT_FILE_FD, source: nil, target: file.path, isDir: file.executable, fd: fd)
            filesBytes += UInt64(file.contents.count)
        }
        // The root tmpfs holds mount points, symlinks and the delivered files, then turns read-only.
        config.root_options = UnsafePointer(cString("size=\((1 << 20) + filesBytes * 2),nr_inodes=4096,mode=0755"))
        // Parents first; the order among equals is the order above (stable sort).
        let ordered = entries.enumerated().sorted { a, b in
            let da = depth(a.element.1), db = depth(b.element.1)
            return da != db ? da < db : a.offset < b.offset
        }.map(\.element)
        let buffer = allocate(cs_mount.self, count: ordered.count)
        buffer.initialize(from: ordered.map(\.0), count: ordered.count)
        config.mounts = UnsafePointer(buffer)
        config.n_mounts = Int32(ordered.count)
        mountSubjects = ordered.map(\.1)
    }

    private func depth(_ subject: String) -> Int {
        let target = subject.split(separator: " ").first ?? ""
        return target.split(separator: "/").count
    }

    private func buildRlimits(_ limits: Limits) {
        let cpuSeconds = UInt64((limits.cpuTimeMs + 999) / 1000)
        let items: [(Int32, UInt64, UInt64, String)] = [
            // soft < hard: SIGXCPU first, then SIGKILL a second later.
            (Int32(RLIMIT_CPU.rawValue), cpuSeconds, cpuSeconds + 1, "cpu_time"),
            (Int32(RLIMIT_NOFILE.rawValue), UInt64(limits.openFiles), UInt64(limits.openFiles), "open_files"),
            (Int32(RLIMIT_FSIZE.rawValue), limits.fileSizeBytes, limits.fileSizeBytes, "file_size"),
            (Int32(RLIMIT_STACK.rawValue), limits.stackBytes, limits.stackBytes, "stack"),
            (Int32(RLIMIT_CORE.rawValue), 0, 0, "core"),
        ]
        let buffer = allocate(cs_rlimit.self, count: items.count)
        buffer.initialize(from: items.map { cs_rlimit(resource: $0.0, soft: $0.1, hard: $0.2) }, count: items.count)
        config.rlimits = UnsafePointer(buffer)
        config.n_rlimits = Int32(items.count)
        rlimitSubjects = items.map(\.3)
    }

    func setDescriptors(stdin: Int32, stdout: Int32, stderr: Int32, sync: Int32, report: Int32) {
        config.stdin_fd = stdin
        config.stdout_fd = stdout
        config.stderr_fd = stderr
        config.sync_fd = sync
        config.report_fd = report
    }

    /// What a failing stage was working on.
    func subject(stage: Int32, index: Int32) -> String? {
        switch cs_stage(UInt32(stage)) {
        case CS_STAGE_MOUNT: return mountSubjects.indices.contains(Int(index)) ? mountSubjects[Int(index)] : nil
        case CS_STAGE_RLIMIT: return rlimitSubjects.indices.contains(Int(index)) ? rlimitSubjects[Int(index)] : nil
        case CS_STAGE_EXECVE: return config.argv?[0].map { String(cString: $0) }
        case CS_STAGE_WORKDIR: return config.workdir.map { String(cString: $0) }
        default: return nil
        }
    }

    private func cString(_ s: String) -> UnsafeMutablePointer<CChar> {
        let p = strdup(s)!
        allocations.append(UnsafeMutableRawPointer(p))
        return p
    }

    /// A NULL-terminated char*[] (argv, envp).
    private func stringArray(_ strings: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        let array = allocate(UnsafeMutablePointer<CChar>?.self, count: strings.count + 1)
        for (i, s) in strings.enumerated() { array[i] = cString(s) }
        array[strings.count] = nil
        return array
    }

    /// malloc'ed (freed in `release()`), zeroed memory for `count` values of `type`.
    private func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let raw = calloc(max(1, count), MemoryLayout<T>.stride)!
        allocations.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(1, count))
    }

    /// Frees the C memory and closes the memfds. Call once the child has exec'd or died.
    func release() {
        for fd in fileDescriptors { close(fd) }
        fileDescriptors = []
        for p in allocations { free(p) }
        allocations = []
    }

    deinit { release() }
}

/// A failure while preparing a launch in the parent: stage, subject and errno.
struct LaunchError: Error {
    var stage: String
    var subject: String?
    var errno: Int32

    var setupFailure: SetupFailure { SetupFailure(stage: stage, subject: subject, errno: errno) }
}
