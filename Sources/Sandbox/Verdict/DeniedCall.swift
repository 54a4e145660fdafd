/// One kind of call the policy's filter refused during a run: the system call (with the
/// argument that decided, for socket families and the like: `socket(AF_PACKET)`), how many
/// times, what the filter did, and when it first happened.
public struct DeniedCall: Sendable, Equatable, Hashable {
    /// `mount`, `unshare`, `socket(AF_PACKET)`, `clone(namespace)`, `ioctl(TIOCSTI)`, …
    public var syscall: String
    /// How many times it was refused.
    public var count: Int
    /// What the filter did: the call failed with an errno, or the sandbox was killed.
    public var action: DeniedAction
    /// Milliseconds from the program's start to the first refusal.
    public var firstAtMs: Int64

    public init(syscall: String, count: Int, action: DeniedAction, firstAtMs: Int64) {
        self.syscall = syscall
        self.count = count
        self.action = action
        self.firstAtMs = firstAtMs
    }
}

/// What a policy's filter did to a refused call.
public enum DeniedAction: String, Sendable, Hashable, CaseIterable, Codable {
    /// The call failed with an errno (the policy's, `ENOSYS` for a call an allow list does not
    /// name, `EAFNOSUPPORT` for a socket family).
    case errno
    /// The whole sandbox was killed while the call waited (`seccomp.action: kill`); the call
    /// never ran.
    case kill
}

extension Array where Element == DeniedCall {
    /// The report line's words: "mount ×3, socket(AF_PACKET) ×1" (in the order first refused).
    public var reportText: String {
        map { "\($0.syscall) ×\($0.count)" }.joined(separator: ", ")
    }
}

/// What a trial run saw the program need beyond its policy's network and filesystem.
public struct TrialNote: Sendable, Equatable, Hashable {
    /// What kind of need.
    public enum Kind: String, Sendable, Hashable {
        /// A connection tried: `AF_INET 93.184.216.34:443`, `AF_UNIX /run/x.sock`.
        case connect
        /// An absolute path opened that the sandbox's view does not have and the host does.
        case missingPath = "missing_path"
    }
    public var kind: Kind
    public var detail: String
    public var count: Int

    public init(kind: Kind, detail: String, count: Int) {
        self.kind = kind
        self.detail = detail
        self.count = count
    }
}
