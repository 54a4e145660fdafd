import Foundation
import Glibc
import Sandbox
import Testing

/// What a policy refused, per run (seccomp user notification answered by the supervisor), and
/// a policy learned from a trial run: real hostile scripts under the shipped policies.
@Suite("Refused calls and learned policies", .enabled(if: TestSupport.canSandbox))
struct DeniedCallTests {
    /// mount ×3, unshare ×1, an AF_PACKET socket ×1: each fails as before, and is reported.
    static let hostile = """
        import ctypes, socket
        libc = ctypes.CDLL(None, use_errno=True)
        for _ in range(3):
            print("mount", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None), ctypes.get_errno(), flush=True)
        print("unshare", libc.unshare(0x10000000), ctypes.get_errno(), flush=True)
        try:
            socket.socket(17, socket.SOCK_RAW)
        except OSError as e:
            print("packet", e.errno, flush=True)
        """

    @Test("Under default: mount, unshare and an AF_PACKET socket are refused as before and reported, exactly those, with their counts")
    func defaultReportsExactlyThose() async throws {
        let r = try await TestSupport.python(Self.hostile)
        #expect(r.verdict == .exited && r.exitCode == 0, "\(r.summary) \(r.err)")
        #expect(r.out == "mount -1 \(EPERM)\nmount -1 \(EPERM)\nmount -1 \(EPERM)\nunshare -1 \(EPERM)\npacket \(EAFNOSUPPORT)\n", "\(r.out)")
        let denied = try #require(r.denied, "refusals are reported under default")
        #expect(denied.map(\.syscall) == ["mount", "unshare", "socket(AF_PACKET)"], "\(denied)")
        #expect(denied.map(\.count) == [3, 1, 1], "\(denied)")
        #expect(denied.allSatisfy { $0.action == .errno })
        #expect(denied[0].firstAtMs <= denied[1].firstAtMs && denied[1].firstAtMs <= denied[2].firstAtMs && denied[2].firstAtMs <= r.wallMs)
        #expect(denied.reportText == "mount ×3, unshare ×1, socket(AF_PACKET) ×1")
    }

    @Test("Nothing refused: an empty list (not nil) for bash, coreutils and python with threads and subprocesses; clone3's ENOSYS is never reported")
    func nothingRefusedIsEmpty() async throws {
        let r = try await TestSupport.bash("""
            ls / > /dev/null; sort < /dev/null; /usr/bin/python3 -c 'import threading, subprocess; t = threading.Thread(target=print); t.start(); t.join(); subprocess.run(["true"])'
            """)
        #expect(r.verdict == .exited && r.exitCode == 0, "\(r.summary) \(r.err)")
        #expect(r.denied == [], "\(String(describing: r.denied))")
    }

    @Test("A strict policy kills on the refused call, names it, and the call never runs")
    func strictKillNamesTheCall() async throws {
        let r = try await TestSupport.python("""
            import ctypes, os
            print("before", flush=True)
            ctypes.CDLL(None).mount(b"none", b"/tmp", b"tmpfs", 0, None)
            print("still alive", flush=True)
            """, policy: TestSupport.policy("strict"))
        #expect(r.verdict == .signaled && r.signal == SIGSYS, "\(r.summary)")
        #expect(r.out == "before\n", "\(r.out)")
        let denied = try #require(r.denied)
        #expect(denied.count == 1 && denied.first?.syscall == "mount" && denied.first?.action == .kill && denied.first?.count == 1, "\(denied)")
        #expect(r.summary.contains("seccomp: mount refused"), "\(r.summary)")
    }

    @Test("A policy that refuses sendmsg cannot hand its listener up: its refusals are answered by the filter, unreported (nil)")
    func unreportablePolicy() async throws {
        let r = try await TestSupport.bash("echo ok") { $0.seccomp.deny = ["sendmsg"] }
        #expect(r.verdict == .exited && r.out == "ok\n", "\(r.summary) \(r.err)")
        #expect(r.denied == nil)
    }

    @Test("A filter loaded late (the policy refuses prlimit64) still reports what it refused")
    func lateFilterReports() async throws {
        let r = try await TestSupport.bash("ulimit -n 10 && echo lowered || echo refused") { $0.seccomp.deny = ["prlimit64"] }
        #expect(r.out == "refused\n", "\(r.summary) \(r.err)")
        #expect(r.denied?.first?.syscall == "prlimit64", "\(String(describing: r.denied))")
    }

    @Test("A refused call in a tight loop is throttled: the answers are bounded by the rate, the program's wall clock runs on")
    func tightLoopIsThrottled() async throws {
        var configuration = SandboxConfiguration()
        configuration.refusalsPerSecond = 200
        configuration.warmPoolSize = 0
        let sandbox = try Sandbox(configuration: configuration)
        var policy = try TestSupport.policy()
        policy.limits.wallTimeMs = 1000
        let file = SandboxFile(path: "/sandbox/loop.py", contents: Array("""
            import ctypes
            libc = ctypes.CDLL(None)
            while True:
                libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)
            """.utf8))
        let r = try await sandbox.run(RunRequest(policy: policy, command: ["/usr/bin/python3", "/sandbox/loop.py"], files: [file]))
        #expect(r.verdict == .wallTimeout, "\(r.summary)")
        let mounts = try #require(r.denied?.first { $0.syscall == "mount" })
        // A bucket of 200 plus 200 a second over the run's wall time (and a second of slack).
        let bound = 200 + 200 * Int(r.wallMs + 1000) / 1000
        #expect(mounts.count > 0 && mounts.count <= bound, "\(mounts.count) answered in \(r.wallMs) ms, bound \(bound)")
    }

    /// Threads, a socketpair, and a call default does not list (sync).
    static let small = """
        import os, socket, threading
        a, b = socket.socketpair()
        t = threading.Thread(target=lambda: a.send(b"ping"))
        t.start(); t.join()
        print(b.recv(4).decode(), flush=True)
        os.sync()
        print("synced", flush=True)
        """

    @Test("A learned policy runs its program with nothing refused; the same program under default is refused what was added")
    func learnedPolicyRunsClean() async throws {
        let base = try TestSupport.policy()
        let file = SandboxFile(path: "/sandbox/small.py", contents: Array(Self.small.utf8))
        var trial = RunRequest(policy: base, command: ["/usr/bin/python3", "/sandbox/small.py"], files: [file])
        trial.learning = true
        let learnedRun = try await TestSupport.sandbox.run(trial)
        #expect(learnedRun.verdict == .exited && learnedRun.exitCode == 0, "\(learnedRun.summary) \(learnedRun.err)")
        let seen = try #require(learnedRun.denied)
        let learned = LearnedPolicy(base: base, refusals: seen.map { ($0.syscall, $0.count) })
        #expect(learned.grantedSyscalls == ["sync"], "\(seen)")
        #expect(learned.policy.seccomp.allow == ["sync"])

        // The file it writes loads back (what `confine policy check` does) as the same policy.
        let text = learned.render(header: ["test"])
        let reloaded = try PolicyLoader.load(yaml: text, name: base.name, file: "learned.yaml")
        #expect(reloaded.seccomp == learned.policy.seccomp)
        #expect(text.contains("# learned: sync ×1"), "\(text)")
        #expect(LearnedPolicy.recordedCounts(in: text).map(\.label) == ["sync"])

        let under = try await TestSupport.sandbox.run(RunRequest(policy: reloaded, command: ["/usr/bin/python3", "/sandbox/small.py"], files: [file]))
        #expect(under.verdict == .exited && under.out == "ping\nsynced\n", "\(under.summary) \(under.err)")
        #expect(under.denied == [], "\(String(describing: under.denied))")

        let underDefault = try await TestSupport.sandbox.run(RunRequest(policy: base, command: ["/usr/bin/python3", "/sandbox/small.py"], files: [file]))
        #expect(underDefault.denied?.map(\.syscall) == learned.grantedSyscalls, "\(String(describing: underDefault.denied))")
    }

    @Test("A trial run notes the connections tried and the host files its view lacks, to review; nothing is granted for them")
    func trialRunNotesNeeds() async throws {
        let base = try TestSupport.policy()
        let file = SandboxFile(path: "/sandbox/needs.py", contents: Array("""
            import socket
            for _ in range(2):
                try:
                    socket.create_connection(("192.0.2.7", 8443), timeout=1)
                except OSError as e:
                    print("connect", e.errno, flush=True)
            try:
                open("/etc/hostname")
            except OSError as e:
                print("open", e.errno, flush=True)
            try:
                open("/nowhere/at/all")
            except OSError:
                pass
            """.utf8))
        var trial = RunRequest(policy: base, command: ["/usr/bin/python3", "/sandbox/needs.py"], files: [file])
        trial.learning = true
        let r = try await TestSupport.sandbox.run(trial)
        #expect(r.out == "connect \(ENETUNREACH)\nconnect \(ENETUNREACH)\nopen \(ENOENT)\n", "the calls still fail as the policy's sandbox makes them: \(r.out) \(r.err)")
        #expect(r.trialNotes.contains(TrialNote(kind: .connect, detail: "AF_INET 192.0.2.7:8443", count: 2)), "\(r.trialNotes)")
        if FileManager.default.fileExists(atPath: "/etc/hostname") {
            #expect(r.trialNotes.contains(TrialNote(kind: .missingPath, detail: "/etc/hostname", count: 1)), "\(r.trialNotes)")
        } else {
            print("SKIP the missing-path half: this host has no /etc/hostname")
        }
        #expect(!r.trialNotes.contains { $0.detail == "/nowhere/at/all" }, "a path the host lacks too is a probe, not a need")
        var learned = LearnedPolicy(base: base, refusals: (r.denied ?? []).map { ($0.syscall, $0.count) })
        learned.needs = r.trialNotes
        #expect(learned.policy == base, "nothing granted for them")
        let text = learned.render(header: [])
        #expect(text.contains("# needs: connect AF_INET 192.0.2.7:8443 ×2"), "\(text)")
        #expect(LearnedPolicy.recordedNeeds(in: text) == r.trialNotes)
        // A run that is not a trial notes nothing (its filter does not show connects).
        let plain = try await TestSupport.sandbox.run(RunRequest(policy: base, command: ["/usr/bin/python3", "/sandbox/needs.py"], files: [file]))
        #expect(plain.trialNotes.isEmpty && plain.denied == [])
    }

    @Test("What no policy can grant (AF_PACKET, namespaces) is listed for review, never granted")
    func notGrantable() throws {
        let base = try TestSupport.policy()
        let learned = LearnedPolicy(base: base, refusals: [("socket(AF_PACKET)", 2), ("clone(namespace)", 1), ("socket(AF_NETLINK)", 1), ("mount", 1)])
        #expect(learned.notGranted.map(\.label) == ["socket(AF_PACKET)", "clone(namespace)"])
        #expect(learned.grantedFamilies == [.netlink])
        #expect(learned.grantedSyscalls == ["mount"])
        #expect(learned.policy.seccomp.socketFamilies == base.seccomp.socketFamilies + [.netlink])
        #expect(learned.policy.allowances(beyond: base).map(\.description) == ["seccomp: allows mount", "seccomp.socket_families: allows netlink sockets"])
        #expect(base.allowances(beyond: learned.policy).isEmpty)
    }
}
