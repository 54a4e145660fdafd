import CSandbox
import Glibc
import HumanText

/// Names a policy's seccomp section may use: system calls (checked with libseccomp) and errno
/// values for `action: errno`.
public enum SyscallNames {
    /// Whether libseccomp knows `name`. Names of system calls that exist only on other
    /// architectures (`socketcall` on x86_64) are accepted: libseccomp resolves them to pseudo
    /// numbers and skips them when building this machine's filter, so a policy stays portable.
    static func isKnown(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }) else {
            return false
        }
        return seccomp_syscall_resolve_name(name) != -1  // __NR_SCMP_ERROR
    }

    /// The native architecture's system call names, for "did you mean".
    static let native: [String] = {
        var names: [String] = []
        let arch = seccomp_arch_native()
        for number in 0..<1024 {
            if let c = seccomp_syscall_resolve_num_arch(arch, Int32(number)) {
                names.append(String(cString: c))
                free(c)
            }
        }
        return names
    }()

    /// The errno for `EPERM`-style names or numbers 1…4095, else nil.
    static func errno(_ text: String) -> Int32? {
        if text.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int32(text), (1...4095).contains(n) { return n }
        if text == "ENOTSUP" { return EOPNOTSUPP }
        if text == "EWOULDBLOCK" { return EAGAIN }
        return ErrnoName.value(of: text)
    }

    /// The name for an errno (`EPERM`), or its number when it has no common name.
    public static func errnoName(_ value: Int32) -> String {
        ErrnoName.names[value] ?? String(value)
    }

    /// The errno names accepted, for messages.
    static var errnoNames: [String] { ErrnoName.names.values.sorted() }
}
