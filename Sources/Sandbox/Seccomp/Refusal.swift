import CSandbox
import Glibc

/// What a policy's filter refuses a call for, decided again by the supervisor from the call's
/// number and arguments when the filter's refusals are notifications: the words it is reported
/// under and the answer the filter would have given. Mirrors `cs_build_seccomp`'s rules.
struct RefusalRules: Sendable {
    /// The answer to a refused call.
    enum Answer: Equatable, Sendable {
        case errno(Int32)
        case kill
        /// Not a refusal: a call a trial run's filter shows the supervisor (connect, the opens).
        case permitted
    }

    private let denied: Set<String>
    private let action: Answer
    private let families: Set<Int32>
    private let denyCloneNamespaces: Bool
    private let permitted: Set<String>

    init(_ policy: SeccompPolicy) {
        denied = Set(SeccompProgram.deniedSyscalls(policy))
        switch policy.action {
        case .errno(let e): action = .errno(e)
        case .kill: action = .kill
        }
        families = Set(policy.socketFamilies.map(\.number))
        denyCloneNamespaces = !policy.allow.contains("unshare")
        permitted = Set(SeccompProgram.permittedSyscalls(policy))
    }

    /// The refusal of syscall `nr` with `args`: its report words and its answer.
    func classify(nr: Int32, args: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)) -> (label: String, answer: Answer) {
        let name = Self.name(of: nr)
        if denied.contains(name) { return (name, action) }
        switch name {
        case "socket", "socketpair":
            let family = args.0
            if family >= 64 || !families.contains(Int32(family)) {
                return ("\(name)(\(Self.familyName(family)))", .errno(EAFNOSUPPORT))
            }
            if name == "socket" && family == 16 && args.2 != 0 { return ("socket(AF_NETLINK)", .errno(EPROTONOSUPPORT)) }
        case "clone" where denyCloneNamespaces && args.0 & Self.namespaceFlags != 0:
            return ("clone(namespace)", action)
        case "ioctl" where [Self.tiocsti, Self.tioclinux].contains(args.1 & 0xffff_ffff):
            return ("ioctl(\(args.1 & 0xffff_ffff == Self.tiocsti ? "TIOCSTI" : "TIOCLINUX"))", action)
        case "personality" where args.0 & 0xffff_ffff != 0 && args.0 & 0xffff_ffff != 0xffff_ffff:
            return ("personality", action)
        default:
            break
        }
        if permitted.contains(name) { return (name, .permitted) }
        // Not on an allow list's names: the second half's ENOSYS.
        return (name, .errno(ENOSYS))
    }

    /// CLONE_NEWNS | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWCGROUP | NEWTIME.
    static let namespaceFlags: UInt64 = 0x0002_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000
        | 0x4000_0000 | 0x0200_0000 | 0x0000_0080
    static let tiocsti: UInt64 = 0x5412
    static let tioclinux: UInt64 = 0x541C

    /// The syscall's name on this architecture, or `syscall_N` when libseccomp does not know it.
    static func name(of nr: Int32) -> String {
        guard let raw = cs_syscall_name(nr) else { return "syscall_\(nr)" }
        defer { free(raw) }
        return String(cString: raw)
    }

    /// `AF_PACKET`, `AF_VSOCK`, … or `AF_<number>`.
    static func familyName(_ family: UInt64) -> String {
        let names = ["AF_UNSPEC", "AF_UNIX", "AF_INET", "AF_AX25", "AF_IPX", "AF_APPLETALK", "AF_NETROM", "AF_BRIDGE",
                     "AF_ATMPVC", "AF_X25", "AF_INET6", "AF_ROSE", "AF_DECnet", "AF_NETBEUI", "AF_SECURITY", "AF_KEY",
                     "AF_NETLINK", "AF_PACKET", "AF_ASH", "AF_ECONET", "AF_ATMSVC", "AF_RDS", "AF_SNA", "AF_IRDA",
                     "AF_PPPOX", "AF_WANPIPE", "AF_LLC", "AF_IB", "AF_MPLS", "AF_CAN", "AF_TIPC", "AF_BLUETOOTH",
                     "AF_IUCV", "AF_RXRPC", "AF_ISDN", "AF_PHONET", "AF_IEEE802154", "AF_CAIF", "AF_ALG", "AF_NFC",
                     "AF_VSOCK", "AF_KCM", "AF_QIPCRTR", "AF_SMC", "AF_XDP", "AF_MCTP"]
        return family < UInt64(names.count) ? names[Int(family)] : "AF_\(family)"
    }
}
