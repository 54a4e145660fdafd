import Foundation
import Sandbox
import Testing

/// Kernel memory a run causes is charged to it: socket buffers of loopback connections that are
/// never read count against the memory limit (on cgroup v1 through the TCP kernel-memory limit).
@Suite("Kernel memory", .enabled(if: TestSupport.canSandbox))
struct KernelMemoryTests {
    @Test("Unread loopback connections cannot hold more than the memory limit in socket buffers, and the peak shows them")
    func socketBuffersCharged() async throws {
        let r = try await TestSupport.python("""
            import socket
            srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(200)
            total, conns, chunk = 0, [], b"x" * 65536
            for i in range(100):
                c = socket.socket()
                try:
                    c.connect(srv.getsockname()); a, _ = srv.accept()
                except OSError:
                    break
                c.setblocking(False)
                while total < (1 << 30):
                    try:
                        total += c.send(chunk)
                    except OSError:
                        break
                conns.append((c, a))
                # As it goes: on cgroup v2 the buffers count as the run's memory, and the run
                # may end as memory_limit before the loop does.
                print(total, flush=True)
            print(total)
            """) {
            $0.limits.memoryBytes = 64 << 20
            $0.limits.openFiles = 512
        }
        #expect(r.verdict == .exited || r.verdict == .memoryLimit, "\(r.summary) \(r.err)")
        let queued = Int(r.out.split(separator: "\n").last ?? "") ?? 0
        // Without the charge, 100 connections queue hundreds of MB (over 1 GiB seen under 256 MiB).
        #expect(queued > 0 && queued < 96 << 20, "queued \(queued) bytes under a 64 MiB limit")
        let peak = try #require(r.memoryPeakBytes)
        #expect(peak >= UInt64(queued) / 2, "peak \(peak) for \(queued) bytes held in socket buffers")
    }
}
