/// One kind of call an execution's policy refused (`DeniedCall`), in an execution's `denied`.
public struct WireDeniedCall: Codable, Sendable, Equatable {
    /// `mount`, `unshare`, `socket(AF_PACKET)`, `clone(namespace)`, `ioctl(TIOCSTI)`, …
    public var syscall: String
    public var count: Int
    /// `errno` or `kill`.
    public var action: String
    public var first_at_ms: Int64

    public init(syscall: String, count: Int, action: String, first_at_ms: Int64) {
        self.syscall = syscall
        self.count = count
        self.action = action
        self.first_at_ms = first_at_ms
    }
}
