import CSandbox
import Glibc
import Synchronization

/// A compiled seccomp BPF program, ready to be handed to the child before clone().
public final class SeccompProgram: Sendable {
    /// The instructions (struct sock_filter, 8 bytes each).
    let instructions: [sock_filter]
    /// Whether its refusals are user notifications, answered (and counted) by the run's
    /// supervisor through the listener the program hands up (`RefusalListener`).
    public let notifies: Bool

    init(instructions: [sock_filter], notifies: Bool) {
        self.instructions = instructions
        self.notifies = notifies
    }

    /// Syscalls refused by every policy unless its `seccomp.allow` names them: the ways
    /// sandboxes have been escaped or abused (namespaces and mounts, kernel modules, tracing,
    /// eBPF, keyrings, io_uring, handle-based opens, clock and system changes), and the calls
    /// that fill a host-wide kernel table one sandbox could drain for everyone: the AIO context
    /// pool (`io_setup`, `fs.aio-max-nr`) and SysV message queues (`msgget`, …: queues are
    /// kernel memory outside the memory limit).
    public static let builtInDenyList: [String] = [
        "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
        "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
        "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
        "bpf", "perf_event_open", "userfaultfd",
        "add_key", "request_key", "keyctl",
        "io_uring_setup", "io_uring_enter", "io_uring_register",
        "open_by_handle_at", "name_to_handle_at",
        "swapon", "swapoff", "reboot", "acct", "quotactl", "syslog", "lookup_dcookie",
        "iopl", "ioperm", "uselib", "vhangup", "nfsservctl",
        "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
        "io_setup", "msgget", "msgsnd", "msgrcv", "msgctl",
    ]

    /// What an allow-list policy permits before its `allow`: what interpreters, shells and the
    /// usual tools (coreutils, grep, sed, awk, curl) call. Names this libseccomp or this
    /// architecture does not know are skipped. Not in it, among others: `sync` and `syncfs`
    /// (host-wide writeback), `modify_ldt`, the NUMA policy calls, `sethostname`, `fanotify_*`.
    /// `clone`, `ioctl`, `socket`, `socketpair` and `personality` are in it, their arguments
    /// checked by the filter's first half.
    public static let builtInAllowList: [String] = [
        // Files and descriptors.
        "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
        "open", "openat", "openat2", "creat", "close", "close_range", "dup", "dup2", "dup3", "lseek", "fcntl", "ioctl",
        "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "access", "faccessat", "faccessat2",
        "readlink", "readlinkat", "getdents", "getdents64", "getcwd", "chdir", "fchdir",
        "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2",
        "link", "linkat", "symlink", "symlinkat", "mknod", "mknodat",
        "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "fchownat", "lchown", "umask",
        "truncate", "ftruncate", "fallocate", "fadvise64", "readahead", "fsync", "fdatasync", "sync_file_range",
        "flock", "utime", "utimes", "utimensat", "futimesat",
        "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr",
        "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
        "pipe", "pipe2", "splice", "tee", "vmsplice", "sendfile", "copy_file_range",
        "select", "pselect6", "poll", "ppoll", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
        "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd", "signalfd4",
        "timerfd_create", "timerfd_settime", "timerfd_gettime", "inotify_init", "inotify_init1",
        "inotify_add_watch", "inotify_rm_watch", "memfd_create",
        "io_submit", "io_getevents", "io_pgetevents", "io_cancel", "io_destroy",
        // Memory.
        "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "msync", "mincore", "mlock", "mlock2", "munlock",
        "mlockall", "munlockall", "remap_file_pages", "membarrier", "pkey_alloc", "pkey_free", "pkey_mprotect",
        "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl",
        "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
        // Processes, threads, signals.
        "clone", "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
        "kill", "tkill", "tgkill", "pidfd_open", "pidfd_send_signal",
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigsuspend", "rt_sigtimedwait",
        "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack", "restart_syscall", "pause",
        "futex", "futex_waitv", "set_robust_list", "get_robust_list", "set_tid_address", "rseq",
        "arch_prctl", "set_thread_area", "get_thread_area", "prctl", "personality", "seccomp",
        "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
        "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
        "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
        "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "setfsuid", "setfsgid",
        "capget", "capset", "getrlimit", "setrlimit", "prlimit64", "getrusage", "times",
        "getpriority", "setpriority", "ioprio_get", "ioprio_set",
        "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
        "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
        "sched_rr_get_interval", "sched_getattr", "sched_setattr", "getcpu",
        // Time.
        "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time",
        "alarm", "getitimer", "setitimer", "timer_create", "timer_settime", "timer_gettime", "timer_getoverrun",
        "timer_delete",
        // Sockets (families checked).
        "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname", "getpeername",
        "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "setsockopt", "getsockopt",
        // The system, read only.
        "uname", "sysinfo", "getrandom",
    ]

    /// The syscall names a policy denies with its action: the built-in deny list less `allow`,
    /// plus `deny`.
    public static func deniedSyscalls(_ policy: SeccompPolicy) -> [String] {
        let allowed = Set(policy.allow)
        var names = builtInDenyList.filter { !allowed.contains($0) }
        for name in policy.deny where !names.contains(name) { names.append(name) }
        return names
    }

    /// The syscall names a policy permits (some with their arguments checked), sorted: for an
    /// allow list, the built-in allow list plus `allow`, less what is denied; for a deny list,
    /// every syscall of this architecture less what is denied. Names this libseccomp does not
    /// know are left out.
    public static func permittedSyscalls(_ policy: SeccompPolicy) -> [String] {
        if let known = permittedCache.withLock({ $0[policy] }) { return known }
        let names = computePermittedSyscalls(policy)
        permittedCache.withLock { cache in
            if cache.count >= 64 { cache.removeAll() }  // policies are few; a bound all the same
            cache[policy] = names
        }
        return names
    }

    /// `permittedSyscalls` per policy: asked on every launch (whether refusals can be reported,
    /// whether the filter can be loaded early), and building it hashes some 300 names.
    private static let permittedCache = Mutex<[SeccompPolicy: [String]]>([:])

    private static func computePermittedSyscalls(_ policy: SeccompPolicy) -> [String] {
        let denied = Set(deniedSyscalls(policy))
        let base: [String]
        switch policy.mode {
        case .allowList: base = builtInAllowList + policy.allow
        case .denyList: base = SyscallNames.native
        }
        return Set(base.filter { !denied.contains($0) && $0 != "clone3" && SyscallNames.isKnown($0) }).sorted()
    }

    /// What the program's process calls once it has loaded its filter early, while the sandbox
    /// waits for its run: `read` (init's word to go), `prlimit64` (the run's rlimits: glibc's
    /// setrlimit), `execve`, and on a failure `write` (its report) and `exit_group`.
    static let waitingProgramCalls = ["read", "write", "prlimit64", "execve", "exit_group"]

    /// Whether the policy's filter permits every call of `waitingProgramCalls`, so that the
    /// program may load it before its run is known (off the run's path). A policy that refuses
    /// one of them has its filter loaded after the rlimits, right before execve.
    public static func permitsWaitingProgram(_ policy: SeccompPolicy) -> Bool {
        let permitted = Set(permittedSyscalls(policy))
        return waitingProgramCalls.allSatisfy(permitted.contains)
    }

    /// What the program's process calls between loading a filter with a listener and handing
    /// the listener up: `sendmsg` (to init) and `close` (its own copy). A refused call there
    /// would wait for an answer from a listener nobody holds yet.
    static let listenerHandoffCalls = ["sendmsg", "close"]

    /// Whether the policy's refusals can be reported: its filter permits `listenerHandoffCalls`.
    /// A policy refusing them gets a filter that answers refusals itself, unreported.
    public static func canReportRefusals(_ policy: SeccompPolicy) -> Bool {
        let permitted = Set(permittedSyscalls(policy))
        return listenerHandoffCalls.allSatisfy(permitted.contains)
    }

    private struct Key: Hashable {
        var policy: SeccompPolicy
        var notify: Bool
        var watch: Bool
    }

    private static let cache = Mutex<[Key: SeccompProgram]>([:])

    /// The program for a policy, compiled once and cached. With `notify` (only when
    /// `canReportRefusals`), every refusal but clone3's ENOSYS is a user notification that the
    /// run's supervisor answers with the same errno (or a kill), counting it.
    /// With `watch` too (a trial run), connect and the opens are notifications as well, let
    /// through once their destination or path is read.
    public static func compile(_ policy: SeccompPolicy, notify: Bool = false, watch: Bool = false) throws(SeccompError) -> SeccompProgram {
        let key = Key(policy: policy, notify: notify, watch: watch)
        if let cached = cache.withLock({ $0[key] }) { return cached }
        let notify = notify && canReportRefusals(policy)
        let watch = watch && notify
        let names = deniedSyscalls(policy)
        let action: UInt32
        switch policy.action {
        case _ where notify: action = 0x7fc0_0000  // SCMP_ACT_NOTIFY
        case .errno(let e): action = 0x0005_0000 | (UInt32(e) & 0xffff)  // SCMP_ACT_ERRNO(e)
        case .kill: action = 0x8000_0000  // SCMP_ACT_KILL_PROCESS
        }
        // Namespaces stay closed unless the operator allowed unshare explicitly.
        let denyCloneNamespaces: Int32 = policy.allow.contains("unshare") ? 0 : 1
        let permitted = policy.mode == .allowList ? permittedSyscalls(policy) : []
        let families = policy.socketFamilies.map(\.number)
        var length = 0
        var message = [CChar](repeating: 0, count: 256)
        let denyStrings = names.map { strdup($0) }, allowStrings = permitted.map { strdup($0) }
        defer { (denyStrings + allowStrings).forEach { free($0) } }
        let denyPointers = denyStrings.map { UnsafePointer($0) }, allowPointers = allowStrings.map { UnsafePointer($0) }
        let filter = denyPointers.withUnsafeBufferPointer { deny in
            allowPointers.withUnsafeBufferPointer { allow in
                families.withUnsafeBufferPointer { families in
                    cs_build_seccomp(deny.baseAddress, Int32(deny.count), action, denyCloneNamespaces, 1,
                                     families.baseAddress, Int32(families.count),
                                     policy.mode == .allowList ? 1 : 0, allow.baseAddress, Int32(allow.count),
                                     notify ? (watch ? 2 : 1) : 0, &length, &message, message.count)
                }
            }
        }
        guard let filter else {
            throw SeccompError(message: message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        defer { free(filter) }
        let program = SeccompProgram(instructions: Array(UnsafeBufferPointer(start: filter, count: length)), notifies: notify)
        cache.withLock { $0[key] = program }
        return program
    }
}

/// The seccomp program could not be built (an unknown syscall name, a libseccomp failure).
public struct SeccompError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public var description: String { "seccomp: \(message)" }
}

