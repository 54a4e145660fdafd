import Foundation

/// One kind of call an execution's policy refused (the sandbox's `DeniedCall`, kept with the
/// execution): `mount` ×3 with `errno`, first 12 ms after the program started. Stored as JSON
/// with the API's member names.
public struct DeniedSyscall: Sendable, Equatable, Codable {
    /// `mount`, `socket(AF_PACKET)`, `clone(namespace)`, …
    public var syscall: String
    public var count: Int
    /// `errno` (the call failed) or `kill` (the sandbox was killed while it waited).
    public var action: String
    /// Milliseconds from the program's start to the first refusal.
    public var firstAtMs: Int64

    public init(syscall: String, count: Int, action: String, firstAtMs: Int64) {
        self.syscall = syscall
        self.count = count
        self.action = action
        self.firstAtMs = firstAtMs
    }

    enum CodingKeys: String, CodingKey {
        case syscall, count, action
        case firstAtMs = "first_at_ms"
    }
}
