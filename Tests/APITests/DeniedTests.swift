import Foundation
import Testing

/// An execution's `denied`: what its policy refused, answered by `GET /executions/{id}` and
/// counted in `confine_seccomp_denied_total{policy, syscall}`.
@Suite("Refused calls of an execution")
struct DeniedTests {
    @Test("GET /executions/{id} answers denied (mount ×3, unshare, socket(AF_PACKET)); an execution that refused nothing answers []")
    func deniedIsAnswered() async throws {
        try await LiveServer.with { s in
            let hostile = try await s.job("hostile", "python", """
                import ctypes, socket
                libc = ctypes.CDLL(None)
                for _ in range(3):
                    libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)
                libc.unshare(0x10000000)
                try:
                    socket.socket(17, socket.SOCK_RAW)
                except OSError:
                    pass
                """)
            let ran = try await s.post("/executions/\(hostile)/run?wait=true")
            #expect(ran.status == 200, "\(ran)")
            let id = ran.object["id"] as? Int ?? 0
            let read = try await s.get("/executions/\(id)")
            let denied = try #require(read.object["denied"] as? [[String: Any]], "\(read)")
            #expect(denied.map { $0["syscall"] as? String } == ["mount", "unshare", "socket(AF_PACKET)"], "\(denied)")
            #expect(denied.map { $0["count"] as? Int } == [3, 1, 1])
            #expect(denied.allSatisfy { $0["action"] as? String == "errno" && ($0["first_at_ms"] as? Int ?? -1) >= 0 })
            #expect(Set(denied.flatMap(\.keys)) == ["syscall", "count", "action", "first_at_ms"])

            let quiet = try await s.job("quiet", "bash", "echo hi")
            let plain = try await s.post("/executions/\(quiet)/run?wait=true")
            #expect((plain.object["denied"] as? [Any])?.isEmpty == true, "\(plain)")

            let m = try await s.metrics { $0["confine_seccomp_denied_total", ["policy": "default", "syscall": "mount"]] == 3 }
            #expect(m["confine_seccomp_denied_total", ["policy": "default", "syscall": "socket(AF_PACKET)"]] == 1)
            #expect(m.types["confine_seccomp_denied_total"] == "counter")
        }
    }
}
