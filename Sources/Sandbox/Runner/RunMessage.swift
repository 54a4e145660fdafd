import CSandbox
import Glibc

/// The run, as init receives it once its sandbox is ready: argv, envp, candidate executable
/// paths, rlimits, and the delivered files as sealed memfds. Owns the memfds until closed.
final class RunMessage {
    private var header = cs_run_header()
    private var strings: [UInt8] = []
    private(set) var fileDescriptors: [Int32] = []
    let command: [String]
    let filePaths: [String]
    /// The limit each rlimit entry enforces, to name a failing one.
    let rlimitSubjects: [String]

    init(command: [String], environment: [String: String], files: [SandboxFile], limits: Limits) throws(LaunchError) {
        self.command = command
        filePaths = files.map(\.path)
        let envp = environment.keys.sorted().map { "\($0)=\(environment[$0]!)" }
        // Candidate executables: a path as is, else each entry of the sandbox's PATH.
        let program = command.first ?? ""
        let candidates = program.contains("/") ? [program]
            : (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").map { "\($0)/\(program)" }
        let lists = [command, envp, candidates, filePaths]
        for list in lists {
            for s in list {
                strings.append(contentsOf: s.utf8)
                strings.append(0)
            }
        }
        let pointerCount = lists.reduce(4) { $0 + $1.count }
        guard strings.count <= Int(CS_MAX_STRINGS_BYTES), pointerCount <= Int(CS_MAX_POINTERS) else {
            throw LaunchError(stage: "prepare the run", subject: "arguments and environment (\(strings.count) bytes, \(pointerCount) strings; at most \(CS_MAX_STRINGS_BYTES) bytes and \(CS_MAX_POINTERS) strings)", errno: E2BIG)
        }
        guard files.count <= Int(CS_MAX_FILES) else {
            throw LaunchError(stage: "prepare the run", subject: "\(files.count) files (at most \(CS_MAX_FILES))", errno: E2BIG)
        }
        header.magic = CS_RUN_MAGIC
        header.n_argv = UInt32(command.count)
        header.n_envp = UInt32(envp.count)
        header.n_exec_paths = UInt32(candidates.count)
        header.n_files = UInt32(files.count)
        header.strings_bytes = UInt32(strings.count)

        let cpuSeconds = UInt64((limits.cpuTimeMs + 999) / 1000)
        let rlimits: [(Int32, UInt64, UInt64, String)] = [
            // soft < hard: SIGXCPU first, then SIGKILL a second later.
            (Int32(RLIMIT_CPU.rawValue), cpuSeconds, cpuSeconds + 1, "cpu_time"),
            (Int32(RLIMIT_NOFILE.rawValue), UInt64(limits.openFiles), UInt64(limits.openFiles), "open_files"),
            (Int32(RLIMIT_FSIZE.rawValue), limits.fileSizeBytes, limits.fileSizeBytes, "file_size"),
            (Int32(RLIMIT_STACK.rawValue), limits.stackBytes, limits.stackBytes, "stack"),
            (Int32(RLIMIT_CORE.rawValue), 0, 0, "core"),
            (Int32(CS_RLIMIT_MSGQUEUE), limits.messageQueueBytes, limits.messageQueueBytes, "message_queue_bytes"),
            (Int32(CS_RLIMIT_SIGPENDING), UInt64(limits.pendingSignals), UInt64(limits.pendingSignals), "pending_signals"),
        ]
        rlimitSubjects = rlimits.map(\.3)
        header.n_rlimits = UInt32(rlimits.count)
        withUnsafeMutableBytes(of: &header.rlimits) { raw in
            let slots = raw.bindMemory(to: cs_rlimit.self)
            for (i, r) in rlimits.enumerated() { slots[i] = cs_rlimit(resource: r.0, soft: r.1, hard: r.2) }
        }

        // This sandbox's own ceilings on per-user kernel objects (its user namespace's). Init
        // forbids every kind of new namespace itself, before the run is known (seccomp refuses
        // them too: a second wall).
        withUnsafeMutableBytes(of: &header.user_limits) { raw in
            let slots = raw.bindMemory(to: UInt64.self)
            for i in 0..<slots.count { slots[i] = UInt64.max }  // CS_USER_LIMIT_KEEP
            slots[Int(CS_USER_LIMIT_INOTIFY_INSTANCES.rawValue)] = UInt64(limits.inotifyInstances)
            slots[Int(CS_USER_LIMIT_INOTIFY_WATCHES.rawValue)] = UInt64(limits.inotifyWatches)
        }

        for (i, file) in files.enumerated() {
            let fd = file.contents.withUnsafeBytes { bytes in
                cs_sealed_memfd("confine-file", bytes.baseAddress, bytes.count, file.executable ? 1 : 0)
            }
            guard fd >= 0 else {
                close()
                throw LaunchError(stage: "memfd", subject: file.path, errno: -fd)
            }
            fileDescriptors.append(fd)
            if file.executable { cs_mark_executable(&header, UInt32(i)) }
        }
    }

    /// Whether sending it cannot wait on init reading: it fits, whole, in a unix socket's
    /// buffer (a run's strings are usually a few hundred bytes; at most 1 MiB).
    var sendsWithoutWaiting: Bool { strings.count <= 64 << 10 }

    /// Sends the run to init; nil on success, else the errno.
    func send(over socket: Int32) -> Int32? {
        let rc = strings.withUnsafeBufferPointer { s in
            s.withMemoryRebound(to: CChar.self) { chars in
                cs_send_run(socket, &header, fileDescriptors, Int32(fileDescriptors.count), chars.baseAddress, chars.count)
            }
        }
        return rc == 0 ? nil : -rc
    }

    /// What a failing stage of the run was working on.
    func subject(stage: cs_stage, index: Int32) -> String? {
        switch stage {
        case CS_STAGE_RLIMIT: return rlimitSubjects.indices.contains(Int(index)) ? rlimitSubjects[Int(index)] : nil
        case CS_STAGE_PLACE_FILE: return filePaths.indices.contains(Int(index)) ? filePaths[Int(index)] : nil
        case CS_STAGE_EXECVE: return command.first
        case CS_STAGE_USER_LIMIT: return String(cString: cs_user_limit_name(index))
        default: return nil
        }
    }

    func close() {
        for fd in fileDescriptors { Glibc.close(fd) }
        fileDescriptors = []
    }

    deinit { close() }
}
