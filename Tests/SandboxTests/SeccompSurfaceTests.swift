import Foundation
import Glibc
import Sandbox
import Testing

/// The shipped policies' seccomp filters: an allow list (unknown system calls ENOSYS, the
/// dangerous ones the policy's action), socket families, personality, host-wide kernel tables —
/// and the ordinary tools still working under each policy.
@Suite("Seccomp surface", .enabled(if: TestSupport.canSandbox))
struct SeccompSurfaceTests {
    /// A Python probe printing `name=errno` (0: the call succeeded) for each call tried.
    static let probe = """
        import ctypes, socket, errno
        libc = ctypes.CDLL(None, use_errno=True)
        def call(name, nr, *args):
            ctypes.set_errno(0)
            r = libc.syscall(nr, *[ctypes.c_long(a) for a in args])
            print(f"{name}={0 if r >= 0 else ctypes.get_errno()}", flush=True)
        def sock(name, family, kind=socket.SOCK_STREAM, proto=0):
            try:
                socket.socket(family, kind, proto).close()
                print(f"{name}=0", flush=True)
            except OSError as e:
                print(f"{name}={e.errno}", flush=True)
        sock("vsock", 40)
        sock("packet", 17, socket.SOCK_RAW)
        sock("netlink_route", 16, socket.SOCK_RAW, 0)
        sock("netlink_audit", 16, socket.SOCK_RAW, 9)
        sock("unix", socket.AF_UNIX)
        sock("inet", socket.AF_INET)
        sock("inet6", socket.AF_INET6)
        call("vsock_high_bits", 41, (1 << 32) | 40, 1, 0)
        call("socketpair_vsock", 53, 40, 1, 0, 0)
        call("personality_query", 135, 0xffffffff)
        call("personality_default", 135, 0)
        call("personality_no_aslr", 135, 0x0040000)
        call("personality_32bit", 135, 0x0800000)
        call("msgget", 68, 0, 0o1000 | 0o600)
        call("io_setup", 206, 16, ctypes.addressof(ctypes.c_ulong(0)))
        call("sync", 162)
        call("unknown_1000", 1000)
        call("getpid", 39)
        """

    static func results(_ out: String) -> [String: Int32] {
        var map: [String: Int32] = [:]
        for line in out.split(separator: "\n") {
            let parts = line.split(separator: "=")
            if parts.count == 2, let n = Int32(parts[1]) { map[String(parts[0])] = n }
        }
        return map
    }

    @Test("default (allow list): AF_VSOCK, AF_PACKET, netlink refused; personality beyond the default, msgget and io_setup EPERM; an unlisted call ENOSYS")
    func defaultPolicySurface() async throws {
        #if arch(x86_64)
        let policy = try TestSupport.policy("default")
        #expect(policy.seccomp.mode == .allowList)
        let r = try await TestSupport.python(Self.probe, policy: policy)
        #expect(r.verdict == .exited && r.exitCode == 0, "\(r.summary) \(r.err)")
        let got = Self.results(r.out)
        #expect(got["vsock"] == EAFNOSUPPORT, "\(r.out)")
        #expect(got["vsock_high_bits"] == EAFNOSUPPORT, "\(r.out)")
        #expect(got["socketpair_vsock"] == EAFNOSUPPORT, "\(r.out)")
        #expect(got["packet"] == EAFNOSUPPORT, "\(r.out)")
        #expect(got["netlink_route"] == EAFNOSUPPORT, "default does not list netlink: \(r.out)")
        #expect(got["unix"] == 0 && got["inet"] == 0, "\(r.out)")
        #expect(got["personality_query"] == 0 && got["personality_default"] == 0, "\(r.out)")
        #expect(got["personality_no_aslr"] == EPERM && got["personality_32bit"] == EPERM, "\(r.out)")
        #expect(got["msgget"] == EPERM, "\(r.out)")
        #expect(got["io_setup"] == EPERM, "\(r.out)")
        #expect(got["sync"] == ENOSYS, "not on the allow list: \(r.out)")
        #expect(got["unknown_1000"] == ENOSYS, "\(r.out)")
        #expect(got["getpid"] == 0, "\(r.out)")
        #else
        print("SKIP seccomp surface probe: the probe's syscall numbers are x86_64's")
        #endif
    }

    @Test("networked: netlink route sockets only (getaddrinfo's), not other netlink protocols")
    func networkedNetlink() async throws {
        #if arch(x86_64)
        let r = try await TestSupport.python(Self.probe, policy: try TestSupport.policy("networked"))
        let got = Self.results(r.out)
        #expect(got["netlink_route"] == 0, "\(r.out) \(r.err)")
        #expect(got["netlink_audit"] == EPROTONOSUPPORT, "\(r.out)")
        #expect(got["vsock"] == EAFNOSUPPORT, "\(r.out)")
        #else
        print("SKIP seccomp surface probe: the probe's syscall numbers are x86_64's")
        #endif
    }

    @Test("A deny-list policy still permits what it does not deny (sync), and still refuses vsock and the built-in list")
    func denyListMode() async throws {
        #if arch(x86_64)
        let r = try await TestSupport.python(Self.probe) { $0.seccomp.mode = .denyList }
        let got = Self.results(r.out)
        #expect(got["sync"] == 0, "\(r.out) \(r.err)")
        #expect(got["unknown_1000"] == ENOSYS, "the kernel's own answer: \(r.out)")
        #expect(got["vsock"] == EAFNOSUPPORT && got["msgget"] == EPERM && got["personality_no_aslr"] == EPERM, "\(r.out)")
        #else
        print("SKIP seccomp surface probe: the probe's syscall numbers are x86_64's")
        #endif
    }

    @Test("strict kills on a dangerous call (personality beyond the default), answers ENOSYS to an unlisted one")
    func strictKills() async throws {
        #if arch(x86_64)
        let strict = try TestSupport.policy("strict")
        let unlisted = try await TestSupport.python("""
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            print(libc.syscall(162), ctypes.get_errno())
            """, policy: strict)
        #expect(unlisted.verdict == .exited && unlisted.out == "-1 \(ENOSYS)\n", "\(unlisted.summary) \(unlisted.out) \(unlisted.err)")
        let dangerous = try await TestSupport.python("""
            import ctypes
            ctypes.CDLL(None).syscall(68, 0, 0o1000 | 0o600)
            """, policy: strict)
        #expect(dangerous.verdict == .signaled && dangerous.signal == SIGSYS, "\(dangerous.summary)")
        #else
        print("SKIP: x86_64 syscall numbers")
        #endif
    }

    @Test("The usual tools work under every shipped policy: python (with multiprocessing's pipes), bash, coreutils, grep, sed, awk")
    func toolsWork() async throws {
        let script = """
            set -e
            printf 'b\\na\\nc\\n' > /tmp/in.txt
            sort /tmp/in.txt | head -n 2 | tail -n 1 | tr a-z A-Z > /tmp/out.txt
            grep -c . /tmp/in.txt >> /tmp/out.txt
            sed 's/B/beta/' /tmp/out.txt | awk '{ print NR ": " $0 }'
            ls -la /tmp | wc -l > /dev/null; cp /tmp/in.txt /tmp/copy; mv /tmp/copy /tmp/moved; rm /tmp/moved
            mkdir -p /tmp/d/e && find /tmp/d -type d | sort | tr '\\n' ' '; echo
            date +%Y > /dev/null; env | grep -q PATH; id -u > /dev/null; stat /tmp/in.txt > /dev/null; sha256sum /tmp/in.txt | cut -c1-8 > /dev/null
            du -s /tmp > /dev/null; df /tmp > /dev/null; seq 3 | paste -sd+ | bc 2>/dev/null || true; sleep 0.01; uname -s
            /usr/bin/python3 -c 'import json, subprocess, os, threading, socket; a, b = socket.socketpair(); a.send(b"x"); print("py", json.dumps(subprocess.run(["echo", "sub"], capture_output=True, text=True).stdout.strip()), b.recv(1).decode())'
            """
        for name in ["default", "strict", "networked"] {
            let r = try await TestSupport.bash(script, policy: try TestSupport.policy(name)) { $0.limits.wallTimeMs = 30_000; $0.limits.cpuTimeMs = 20_000 }
            #expect(r.verdict == .exited && r.exitCode == 0, "\(name): \(r.summary) \(r.err)")
            #expect(r.out.contains("1: beta\n2: 3\n") && r.out.contains("/tmp/d /tmp/d/e") && r.out.contains("Linux\npy \"sub\" x\n"),
                    "\(name): \(r.out) \(r.err)")
        }
    }

    @Test("curl works under networked (a local HTTP server started in the same sandbox)")
    func curlUnderNetworked() async throws {
        guard FileManager.default.fileExists(atPath: "/usr/bin/curl") else {
            print("SKIP curl under networked: /usr/bin/curl is not installed")
            return
        }
        let r = try await TestSupport.bash("""
            cd /tmp && echo served > index.html
            /usr/bin/python3 -c 'import http.server, socketserver, sys
            s = socketserver.TCPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
            print(s.server_address[1], flush=True); s.handle_request()' > port.txt 2>/dev/null &
            for i in $(seq 100); do [ -s port.txt ] && break; sleep 0.05; done
            curl -sS --max-time 10 "http://127.0.0.1:$(cat port.txt)/index.html"
            wait
            """, policy: try TestSupport.policy("networked")) { $0.limits.wallTimeMs = 30_000 }
        #expect(r.verdict == .exited && r.exitCode == 0 && r.out == "served\n", "\(r.summary) \(r.out) \(r.err)")
    }

    @Test("Policy files say their mode and families; policy check shows the effective list")
    func renderedMode() throws {
        let policy = try TestSupport.policy("default")
        let yaml = policy.renderYAML()
        #expect(yaml.contains("  mode: allow_list\n") && yaml.contains("  socket_families: [unix, inet, inet6]\n"), "\(yaml)")
        let comment = policy.seccomp.renderEffectiveComment()
        #expect(comment.contains("permitted system calls") && comment.contains(" openat") && comment.contains("refused system calls (fail with EPERM)"), "\(comment)")
        #expect(!SeccompProgram.permittedSyscalls(policy.seccomp).contains("mount"))
        #expect(SeccompProgram.permittedSyscalls(policy.seccomp).contains("read"))
        #expect(!SeccompProgram.permittedSyscalls(policy.seccomp).contains("msgget"))
        #expect(try TestSupport.policy("networked").seccomp.socketFamilies.contains(.netlink))
    }
}

/// `Policy.widenings(over:)`: everything that makes a policy looser than a ceiling.
@Suite("Policy widening")
struct PolicyWideningTests {
    @Test("Same limits but more host paths, a weaker action, more syscalls, more families or a deny list: each is a widening")
    func widenings() throws {
        let strict = try TestSupport.policy("strict")
        #expect(strict.widenings(over: strict).isEmpty)
        var paths = strict
        paths.filesystem.readOnly.append(BindMount(source: "/etc"))
        #expect(paths.widenings(over: strict).map(\.field) == ["filesystem.read_only"])
        var below = strict
        below.filesystem.readOnly = [BindMount(source: "/usr/lib")]
        #expect(below.widenings(over: strict).isEmpty, "a path below a bound one is no wider")
        var action = strict
        action.seccomp.action = .errno(1)
        #expect(action.widenings(over: strict).map(\.field) == ["seccomp.action"])
        var syscalls = strict
        syscalls.seccomp.allow = ["ptrace"]
        #expect(syscalls.widenings(over: strict).contains { $0.field == "seccomp" && $0.detail.contains("ptrace") })
        var undenied = strict
        undenied.seccomp.deny = []
        #expect(undenied.widenings(over: strict).contains { $0.field == "seccomp" }, "strict denies more than the built-in list")
        var families = strict
        families.seccomp.socketFamilies.append(.netlink)
        #expect(families.widenings(over: strict).map(\.field) == ["seccomp.socket_families"])
        var mode = strict
        mode.seccomp.mode = .denyList
        #expect(mode.widenings(over: strict).contains { $0.field == "seccomp.mode" })
        var devices = strict
        devices.filesystem.devices = DeviceNode.allCases
        if devices.filesystem.devices != strict.filesystem.devices {
            #expect(devices.widenings(over: strict).map(\.field) == ["filesystem.devices"])
        }
    }
}
