import CSandbox
import Glibc
import Synchronization

/// A compiled seccomp BPF program, ready to be handed to the child before clone().
public final class SeccompProgram: Sendable {
    /// The instructions (struct sock_filter, 8 bytes each).
    let instructions: [sock_filter]

    init(instructions: [sock_filter]) { self.instructions = instructions }

    /// Syscalls refused by every policy unless its `seccomp.allow` names them: the ways
    /// sandboxes have been escaped or abused (namespaces and mounts, kernel modules, tracing,
    /// eBPF, keyrings, io_uring, handle-based opens, clock and system changes).
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
    ]

    /// The syscall names a policy denies: the built-in list less `allow`, plus `deny`.
    public static func deniedSyscalls(_ policy: SeccompPolicy) -> [String] {
        let allowed = Set(policy.allow)
        var names = builtInDenyList.filter { !allowed.contains($0) }
        for name in policy.deny where !names.contains(name) { names.append(name) }
        return names
    }

    static let cache = Mutex<[SeccompPolicy: SeccompProgram]>([:])

    /// The program for a policy, compiled once and cached.
    public static func compile(_ policy: SeccompPolicy) throws(SeccompError) -> SeccompProgram {
        if let cached = cache.withLock({ $0[policy] }) { return cached }
        let names = deniedSyscalls(policy)
        let action: UInt32
        switch policy.action {
        case .errno(let e): action = 0x0005_0000 | (UInt32(e) & 0xffff)  // SCMP_ACT_ERRNO(e)
        case .kill: action = 0x8000_0000  // SCMP_ACT_KILL_PROCESS
        }
        // Namespaces stay closed unless the operator allowed unshare explicitly.
        let denyCloneNamespaces: Int32 = policy.allow.contains("unshare") ? 0 : 1
        var length = 0
        var message = [CChar](repeating: 0, count: 256)
        let cStrings = names.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        let pointers = cStrings.map { UnsafePointer($0) }
        let filter = pointers.withUnsafeBufferPointer { buffer in
            cs_build_seccomp(buffer.baseAddress, Int32(buffer.count), action, denyCloneNamespaces, 1,
                             &length, &message, message.count)
        }
        guard let filter else {
            throw SeccompError(message: message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        defer { free(filter) }
        let program = SeccompProgram(instructions: Array(UnsafeBufferPointer(start: filter, count: length)))
        cache.withLock { $0[policy] = program }
        return program
    }
}

/// The seccomp program could not be built (an unknown syscall name, a libseccomp failure).
public struct SeccompError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public var description: String { "seccomp: \(message)" }
}

