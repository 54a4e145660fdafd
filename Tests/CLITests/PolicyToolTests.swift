import Foundation
import Glibc
import Testing

/// `confine run`'s refusals (the report line, `--json`'s `denied`), `confine policy learn` and
/// `confine policy diff`, run as a user would.
@Suite("confine policy tools")
struct PolicyToolTests {
    static func file(_ name: String, _ text: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("confine-policytool-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let hostile = """
        import ctypes, socket
        libc = ctypes.CDLL(None)
        for _ in range(3):
            libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)
        try:
            socket.socket(17, socket.SOCK_RAW)
        except OSError:
            pass
        """

    @Test("confine run: the report says what was refused; --json has denied", .enabled(if: CLITests.canSandbox))
    func runReportsRefusals() throws {
        let script = try Self.file("hostile.py", Self.hostile)
        let plain = try CLITests.confine(["run", "--file", script, "--", "/usr/bin/python3", "/sandbox/hostile.py"])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(plain.stderr.contains("confine: refused: mount ×3, socket(AF_PACKET) ×1\n"), "\(plain.stderr)")
        let json = try CLITests.confine(["run", "--json", "--file", script, "--", "/usr/bin/python3", "/sandbox/hostile.py"])
        let j = try CLITests.json(json.stdout)
        let denied = try #require(j["denied"] as? [[String: Any]], "\(json.stdout)")
        #expect(denied.map { $0["syscall"] as? String } == ["mount", "socket(AF_PACKET)"])
        #expect(denied.map { $0["count"] as? Int } == [3, 1])
        #expect(denied.map { $0["action"] as? String } == ["errno", "errno"])
        #expect(denied.allSatisfy { $0["first_at_ms"] is Int })
        let quiet = try CLITests.confine(["run", "--json", "--", "/bin/true"])
        #expect((try CLITests.json(quiet.stdout)["denied"] as? [Any])?.isEmpty == true)
        #expect(!(try CLITests.confine(["run", "--", "/bin/true"])).stderr.contains("refused"))
    }

    @Test("confine run under strict names the call that killed", .enabled(if: CLITests.canSandbox))
    func strictNamesTheKiller() throws {
        let script = try Self.file("kill.py", "import ctypes\nctypes.CDLL(None).mount(b'none', b'/tmp', b'tmpfs', 0, None)\nprint('alive')\n")
        let o = try CLITests.confine(["run", "--policy", "strict", "--file", script, "--", "/usr/bin/python3", "/sandbox/kill.py"])
        #expect(o.status == 128 + SIGSYS, "\(o.stderr)")
        #expect(o.stdout.isEmpty)
        #expect(o.stderr.contains("killed by SIGSYS (seccomp: mount refused)"), "\(o.stderr)")
        #expect(o.stderr.contains("confine: refused: mount ×1"), "\(o.stderr)")
    }

    @Test("policy learn writes what policy check accepts; the program runs under it with nothing refused; diff shows the grant; --merge adds counts",
          .enabled(if: CLITests.canSandbox))
    func learnCheckRunDiff() throws {
        let program = try Self.file("small.py", """
            import os, socket, threading
            a, b = socket.socketpair()
            t = threading.Thread(target=lambda: a.send(b"ping"))
            t.start(); t.join()
            print(b.recv(4).decode())
            os.sync()
            """)
        let out = program.replacingOccurrences(of: "small.py", with: "learned.yaml")
        let learn = try CLITests.confine(["policy", "learn", "--from", "default", "--out", out, "--file", program, "--",
                                          "/usr/bin/python3", "/sandbox/small.py"])
        #expect(learn.status == 0, "\(learn.stderr)")
        #expect(learn.stderr.contains("confine: added: sync"), "\(learn.stderr)")
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(text.contains("# learned: sync ×1"), "\(text)")
        #expect(text.contains("    - sync  # learned: used 1× in the trial run"), "\(text)")

        let check = try CLITests.confine(["policy", "check", out])
        #expect(check.status == 0, "\(check.stderr)")
        let run = try CLITests.confine(["run", "--json", "--policy", out, "--file", program, "--", "/usr/bin/python3", "/sandbox/small.py"])
        let j = try CLITests.json(run.stdout)
        #expect(j["stdout"] as? String == "ping\n" && (j["denied"] as? [Any])?.isEmpty == true, "\(run.stdout)")
        let underDefault = try CLITests.confine(["run", "--file", program, "--", "/usr/bin/python3", "/sandbox/small.py"])
        #expect(underDefault.stderr.contains("confine: refused: sync ×1"), "\(underDefault.stderr)")

        let diff = try CLITests.confine(["policy", "diff", "default", out])
        #expect(diff.status == 1)
        #expect(diff.stdout.contains("  + seccomp: allows sync\n"), "\(diff.stdout)")
        #expect(diff.stdout.contains("allows what \(out) does not (0):"), "\(diff.stdout)")
        let same = try CLITests.confine(["policy", "diff", "default", "default"])
        #expect(same.status == 0, "\(same.stdout)")
        let strict = try CLITests.confine(["policy", "diff", "strict", "default"])
        #expect(strict.stdout.contains("+ limits.memory:") && strict.stdout.contains("+ seccomp.action:"), "\(strict.stdout)")

        let merged = out.replacingOccurrences(of: "learned.yaml", with: "merged.yaml")
        let again = try CLITests.confine(["policy", "learn", "--merge", out, "--out", merged, "--", "/bin/bash", "-c", "sync"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try String(contentsOfFile: merged, encoding: .utf8).contains("# learned: sync ×2"))
        let bad = try CLITests.confine(["policy", "learn", "--from", "nonexistent", "--", "/bin/true"])
        #expect(bad.status == 78 && bad.stderr.contains("nonexistent"), "\(bad.stderr)")
    }

    @Test("exec show says what an execution's policy refused", .enabled(if: ClientVerbTests.hasServe))
    func execShowRefused() async throws {
        let server = try await ClientVerbTests.Server()
        defer { server.stop() }
        let script = try server.file("mounter.py", "import ctypes\nfor _ in range(2):\n    ctypes.CDLL(None).mount(b'none', b'/tmp', b'tmpfs', 0, None)\n")
        let queued = try server.confine(["exec", "run", "--script", script, "--type", "python"])
        let id = try ClientVerbTests.executionID(queued)
        let done = try server.waitFor(id) { ($0["status"] as? String) == "SUCCESS" }
        #expect((done["denied"] as? [[String: Any]])?.first?["syscall"] as? String == "mount", "\(done)")
        let show = try server.confine(["exec", "show", String(id)])
        #expect(show.stdout.contains("mount ×2"), "\(show.stdout)")
        #expect(show.stdout.split(separator: "\n").contains { $0.hasPrefix("refused") && $0.hasSuffix("mount ×2") }, "\(show.stdout)")
    }
}
