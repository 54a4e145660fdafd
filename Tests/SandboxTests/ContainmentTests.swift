import ConfineTestSupport
import Foundation
import Glibc
import Sandbox
import Testing

/// Hostile scripts under real limits: each must be contained, and reported precisely.
@Suite("Containment", .enabled(if: TestSupport.canSandbox))
struct ContainmentTests {
    @Test("An infinite loop ends at the wall deadline, on time")
    func infiniteLoop() async throws {
        let r = try await TestSupport.bash("while :; do :; done") { $0.limits.wallTimeMs = 1000 }
        #expect(r.verdict == .wallTimeout)
        #expect(r.signal == SIGKILL)
        // Not before the deadline; after it only by scheduling delay (generous: machines here are
        // shared; the deadline's precision is measured by benchmarks, not asserted).
        #expect(r.wallMs >= 1000 && r.wallMs < 10_000, "wall \(r.wallMs) ms for a 1 s deadline")
    }

    @Test("A CPU burner with a long wall limit ends with cpu_timeout (RLIMIT_CPU)")
    func cpuBurner() async throws {
        // A wall limit far above the CPU limit: the sandboxes' cgroup weighs less than the rest
        // of the machine, and with the whole suite running (throwaway PostgreSQL clusters
        // being made, servers of other tests) a burner was seen getting 3 % of a core, so
        // 20 s of wall time held less than 1 s of CPU.
        let r = try await TestSupport.bash("while :; do :; done") {
            $0.limits.wallTimeMs = 120_000
            $0.limits.cpuTimeMs = 1000
        }
        #expect(r.verdict == .cpuTimeout, "\(r.summary)")
        // RLIMIT_CPU (ticks) and the cgroup (exact) count CPU time apart; under load they differ
        // by 10-25% (788 ms seen while the whole suite ran), so only "most of a second" is asserted.
        #expect(r.cpuMs >= 700, "cpu \(r.cpuMs) ms")
        // No bound on the wall time: on a loaded machine a 1 s CPU budget may take many seconds
        // of wall time (seen: 10.8 s); the verdict already says the CPU limit ended it.
    }

    @Test("Several burners are stopped by the cgroup's total CPU time, not per process")
    func cpuBurnersTogether() async throws {
        // Four processes each under the per-process RLIMIT_CPU (2 s) but 4x over the total.
        let r = try await TestSupport.bash("for i in 1 2 3 4; do (while :; do :; done) & done; wait") {
            $0.limits.wallTimeMs = 120_000  // see cpuBurner
            $0.limits.cpuTimeMs = 1500
            $0.limits.cpuQuota = 2
        }
        #expect(r.verdict == .cpuTimeout, "\(r.summary)")
        #expect(r.cpuMs >= 1400 && r.cpuMs < 4000, "cpu \(r.cpuMs) ms for a 1.5 s total")
    }

    @Test("A memory hog is killed by the cgroup and reported as memory_limit")
    func memoryHog() async throws {
        let r = try await TestSupport.python("""
            chunks = []
            while True:
                chunks.append(bytearray(16 * 1024 * 1024))
            """) { $0.limits.memoryBytes = 64 << 20 }
        #expect(r.verdict == .memoryLimit, "\(r.summary)")
        #expect(r.oomKills >= 1)
        let peak = try #require(r.memoryPeakBytes)
        #expect(peak <= 64 << 20 && peak > 32 << 20, "peak \(peak)")
        // The host is unharmed: the next run works.
        let after = try await TestSupport.bash("echo fine")
        #expect(after.out == "fine\n")
    }

    @Test("A fork bomb is contained by the pids limit and the machine stays usable")
    func forkBomb() async throws {
        let r = try await TestSupport.bash("bomb() { bomb | bomb & }; bomb; sleep 2; echo survived") {
            $0.limits.processes = 32
            $0.limits.wallTimeMs = 4000
        }
        #expect([.exited, .wallTimeout].contains(r.verdict), "\(r.summary)")
        #expect(r.err.contains("Resource temporarily unavailable") || r.err.contains("retry"), "stderr: \(r.err.prefix(300))")
        let after = try await TestSupport.bash("echo usable")
        #expect(after.out == "usable\n")
        #expect(after.verdict == .exited)
    }

    @Test("A 100 MB output flood is capped, counted, and does not deadlock")
    func outputFlood() async throws {
        let r = try await TestSupport.bash("head -c 100000000 /dev/zero; echo done >&2") {
            $0.limits.cpuTimeMs = TestTimeScale.scaled($0.limits.cpuTimeMs)
            $0.limits.wallTimeMs = TestTimeScale.scaled($0.limits.wallTimeMs)
        }
        #expect(r.verdict == .exited && r.exitCode == 0, "\(r.summary)")
        #expect(r.stdoutBytes == 100_000_000)
        #expect(r.stdout.count == 1 << 20)
        #expect(r.stdoutTruncated)
        #expect(r.err == "done\n")
        #expect(!r.stderrTruncated)
    }

    @Test("With on_overflow: kill, a flood ends as output_limit")
    func outputLimitKill() async throws {
        let r = try await TestSupport.bash("yes") {
            $0.outputOverflow = .kill
            $0.limits.stdoutBytes = 4096
        }
        #expect(r.verdict == .outputLimit, "\(r.summary)")
        #expect(r.stdout.count == 4096)
        #expect(r.stdoutTruncated)
    }

    @Test("/etc/shadow, /root, /home and the host's /sys and /var are not there")
    func secretsAbsent() async throws {
        let r = try await TestSupport.bash("""
            for p in /etc/shadow /root /home /var /sys/class/net /etc/passwd-; do
              if [ -e "$p" ]; then echo "PRESENT $p"; cat "$p" 2>&1 | head -c 100; fi
            done
            cat /etc/shadow 2>&1; echo "rc=$?"
            """)
        #expect(!r.out.contains("PRESENT"), "\(r.out)")
        #expect(r.out.contains("No such file or directory"))
        #expect(r.out.contains("rc=1"))
    }

    @Test("Writing outside /tmp fails with EROFS; /tmp is writable")
    func readOnlyRoot() async throws {
        let r = try await TestSupport.bash("""
            touch /newfile 2>&1; touch /usr/newfile 2>&1; touch /sandbox-x 2>&1; mkdir /etc/x 2>&1
            echo hello > /tmp/ok && cat /tmp/ok
            """)
        let lines = r.out.split(separator: "\n")
        #expect(lines.filter { $0.contains("Read-only file system") }.count == 4, "\(r.out)")
        #expect(r.out.hasSuffix("hello\n"))
    }

    @Test("Filling /tmp stops with ENOSPC at the tmpfs size")
    func fillTmp() async throws {
        let r = try await TestSupport.bash("head -c 100000000 /dev/zero > /tmp/big; echo rc=$?; stat -c %s /tmp/big") {
            $0.filesystem.tmpfs = [TmpfsMount(path: "/tmp", sizeBytes: 8 << 20)]
        }
        #expect(r.err.contains("No space left on device"), "\(r.err)")
        #expect(r.out.contains("rc=1"))
        let size = Int(r.out.split(separator: "\n").last ?? "") ?? -1
        #expect(size > 7 << 20 && size <= 8 << 20, "size \(size)")
    }

    @Test("With network none, a TCP server on the host's loopback is unreachable (and reachable with host)")
    func networkNone() async throws {
        let server = try LoopbackServer()
        defer { server.close() }
        let probe = """
            import socket
            s = socket.socket()
            s.settimeout(2)
            try:
                s.connect(("127.0.0.1", \(server.port)))
                print("connected")
            except OSError as e:
                print("refused", e.errno)
            """
        let isolated = try await TestSupport.python(probe)
        #expect(isolated.out.hasPrefix("refused"), "\(isolated.out) \(isolated.err)")
        let interfaces = try await TestSupport.bash("cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '")
        #expect(interfaces.out == "lo\n", "interfaces: \(interfaces.out)")
        let networked = try await TestSupport.python(probe, policy: TestSupport.policy("networked"))
        #expect(networked.out == "connected\n", "\(networked.out) \(networked.err)")
    }

    @Test("ptrace, mount and unshare are denied by seccomp")
    func dangerousSyscalls() async throws {
        let r = try await TestSupport.python("""
            import ctypes, os
            libc = ctypes.CDLL(None, use_errno=True)
            def check(name, rc):
                print(name, rc, os.strerror(ctypes.get_errno()))
            check("ptrace", libc.ptrace(0, 0, 0, 0))
            check("mount", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
            check("unshare", libc.unshare(0x10000000))
            check("clone_newuser", libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0))
            check("clone3", libc.syscall(435, 0, 0))
            check("bpf", libc.syscall(321, 0, 0, 0))
            check("keyctl", libc.syscall(250, 0, 0, 0, 0, 0))
            """)
        #expect(r.out.contains("ptrace -1 Operation not permitted"), "\(r.out)\(r.err)")
        #expect(r.out.contains("mount -1 Operation not permitted"))
        #expect(r.out.contains("unshare -1 Operation not permitted"))
        #expect(r.out.contains("clone_newuser -1 Operation not permitted"))
        #expect(r.out.contains("clone3 -1 Function not implemented"))
        #expect(r.out.contains("bpf -1 Operation not permitted"))
        #expect(r.out.contains("keyctl -1 Operation not permitted"))
    }

    @Test("Under strict.yaml (action kill) a denied syscall kills the process with SIGSYS")
    func seccompKill() async throws {
        let r = try await TestSupport.python("""
            import ctypes
            ctypes.CDLL(None).ptrace(0, 0, 0, 0)
            print("still alive")
            """, policy: TestSupport.policy("strict")) {
            $0.limits.cpuTimeMs = TestTimeScale.scaled($0.limits.cpuTimeMs)
            $0.limits.wallTimeMs = TestTimeScale.scaled($0.limits.wallTimeMs)
        }
        #expect(r.verdict == .signaled, "\(r.summary)")
        #expect(r.signal == SIGSYS)
        #expect(!r.out.contains("still alive"))
    }

    @Test("No host process is visible in /proc")
    func processIsolation() async throws {
        let r = try await TestSupport.bash("ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '; echo; cat /proc/1/cmdline | head -c 20")
        let pids = r.out.split(separator: "\n").first?.split(separator: " ").compactMap { Int($0) } ?? []
        #expect(!pids.isEmpty && pids.allSatisfy { $0 < 10 }, "pids seen: \(pids)")
    }

    @Test("The sandbox cannot kill its init or its parent")
    func killParent() async throws {
        let r = try await TestSupport.bash("kill -9 1 2>&1; kill -9 $PPID 2>&1; kill -9 -1 2>/dev/null; echo alive")
        #expect(r.out.hasSuffix("alive\n"), "\(r.summary) \(r.out)")
        #expect(r.verdict == .exited || r.verdict == .signaled)
    }

    @Test("A setsid'd, double-forked sleeper dies when the run ends")
    func orphanDies() async throws {
        let marker = "987.\(Int.random(in: 100...999))"
        let r = try await TestSupport.bash("(setsid bash -c 'trap \"\" TERM HUP; exec sleep \(marker)' &) ; sleep 0.2; echo started")
        #expect(r.out == "started\n", "\(r.summary)")
        #expect(TestSupport.hostProcesses(containing: "sleep \(marker)").isEmpty)
    }

    @Test("A SIGTERM-ignoring script is killed at the deadline")
    func sigtermIgnored() async throws {
        let r = try await TestSupport.bash("trap '' TERM INT HUP; while :; do sleep 0.05; done") { $0.limits.wallTimeMs = 800 }
        #expect(r.verdict == .wallTimeout)
        #expect(r.wallMs < 10_000, "the loop would run forever; it ended at \(r.wallMs) ms")
    }

    @Test("Binary output is preserved byte for byte")
    func binaryOutput() async throws {
        let r = try await TestSupport.python("""
            import sys
            sys.stdout.buffer.write(bytes(range(256)) * 4)
            sys.stderr.buffer.write(b"\\xff\\xfe\\x00bad utf8")
            """)
        #expect(r.stdout == Array((0..<1024).map { UInt8($0 % 256) }))
        #expect(r.stderr == [0xff, 0xfe, 0x00] + Array("bad utf8".utf8))
    }

    @Test("stdin bytes are delivered, then end-of-file")
    func stdinDelivered() async throws {
        let input = Array((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let r = try await TestSupport.bash("cat; echo EOF >&2", stdin: input)
        #expect(r.stdout == input)
        #expect(r.err == "EOF\n")
        let none = try await TestSupport.bash("cat; echo empty")
        #expect(none.out == "empty\n")
    }

    @Test("Exit codes and signals are reported")
    func exitCodesAndSignals() async throws {
        let exited = try await TestSupport.bash("exit 42")
        #expect(exited.verdict == .exited && exited.exitCode == 42)
        let segv = try await TestSupport.bash("kill -SEGV $$")
        #expect(segv.verdict == .signaled && segv.signal == SIGSEGV && segv.exitCode == nil, "\(segv.summary)")
    }

    @Test("The environment holds only what the policy names")
    func cleanEnvironment() async throws {
        // Never setenv here: other tests read the environment (Process.run copies it) on other
        // threads at the same time. `make test` puts a secret in it beforehand.
        let host = ProcessInfo.processInfo.environment
        var p = try TestSupport.policy()
        p.environment.allow = ["GREETING"]
        #expect(!Set(host.keys).subtracting(p.environment.set.keys).isEmpty, "the test process has variables the policy does not name")
        let r = try await TestSupport.sandbox.run(RunRequest(policy: p, command: ["/usr/bin/env"], environment: ["GREETING": "hi"]))
        let names = Set(r.out.split(separator: "\n").map { String($0.split(separator: "=")[0]) })
        #expect(names == Set(p.environment.set.keys).union(["GREETING"]), "\(r.out)")
        if let secret = host["CONFINE_TEST_SECRET"] { #expect(!r.out.contains(secret)) }
        await #expect(throws: SandboxError.self) {
            _ = try await TestSupport.sandbox.run(RunRequest(policy: p, command: ["/usr/bin/env"], environment: ["LD_PRELOAD": "x"]))
        }
    }

    @Test("Identity: root inside maps to an unprivileged host uid; no capabilities; no_new_privs; seccomp on")
    func privileges() async throws {
        let r = try await TestSupport.bash("cat /proc/self/uid_map; id -u; hostname; grep -E '^(CapEff|CapBnd|CapPrm|NoNewPrivs|Seccomp):' /proc/self/status")
        // One line "0 <host id> 1", the host id from the sandboxes' range (never 0).
        let map = r.out.split(separator: "\n").first?.split(separator: " ", omittingEmptySubsequences: true) ?? []
        #expect(map.count == 3 && map[0] == "0" && map[2] == "1", "\(r.out)")
        #expect(map.count == 3 && UInt32(map[1]).map { SandboxConfiguration().hostIDs.contains($0) } == true, "\(r.out)")
        #expect(r.out.contains("CapEff:\t0000000000000000"))
        #expect(r.out.contains("CapBnd:\t0000000000000000"))
        #expect(r.out.contains("CapPrm:\t0000000000000000"))
        #expect(r.out.contains("NoNewPrivs:\t1"))
        #expect(r.out.contains("Seccomp:\t2"))
        #expect(r.out.contains("\nconfine\n"))
    }

    @Test("Signal dispositions are reset: SIGPIPE kills a writer again")
    func signalsReset() async throws {
        // The server ignores SIGPIPE; `yes | head -1` only ends if yes dies of SIGPIPE.
        let r = try await TestSupport.bash("yes | head -n 1; echo \"${PIPESTATUS[0]}\"") { $0.limits.wallTimeMs = TestTimeScale.scaled(3000) }
        #expect(r.out == "y\n141\n", "\(r.summary) \(r.out)")
    }

    @Test("A delivered file is read-only")
    func deliveredFileReadOnly() async throws {
        let r = try await TestSupport.python("""
            try:
                open("/sandbox/main.py", "a").write("x")
                print("writable")
            except OSError as e:
                print("denied", e.errno)
            """)
        #expect(r.out == "denied 30\n", "\(r.out) \(r.err)")
    }
}

/// A TCP listener on the host's loopback, accepting nothing on purpose.
final class LoopbackServer {
    let fd: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound, listen(fd, 16) == 0 else { throw POSIXError(.EADDRNOTAVAIL) }
        port = UInt16(bigEndian: addr.sin_port)
    }

    func close() { Glibc.close(fd) }
}
