import ConfineTestSupport
import Foundation
import Glibc
import Testing

/// The `confine` binary, run as a user would: exit statuses, the JSON report, policy checks.
@Suite("confine command")
struct CLITests {
    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The built binary: beside the test bundle, else in the checkout's debug build.
    static let binary: String = {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("confine").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        return repoRoot + "/.build/debug/confine"
    }()

    static var canSandbox: Bool {
        if geteuid() != 0 {
            print("SKIP confine run tests: sandboxed runs need root; running as uid \(geteuid())")
            return false
        }
        return true
    }

    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func confine(_ args: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = args
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.currentDirectoryURL = URL(fileURLWithPath: repoRoot)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try ProcessLaunch.run(process)
        // Read both pipes to the end before waiting: the child must never block on a full pipe.
        nonisolated(unsafe) var errData = Data()
        let reader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished { usleep(1000) }
        return Outcome(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                       stderr: String(decoding: errData, as: UTF8.self))
    }

    static func json(_ text: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        return try #require(object as? [String: Any])
    }

    @Test("run --json prints exactly one JSON object with every documented key", .enabled(if: canSandbox))
    func runJSON() throws {
        let o = try Self.confine(["run", "--json", "--", "/bin/bash", "-c", "echo out; echo err >&2; exit 7"])
        #expect(o.status == 7)
        #expect(o.stdout.split(separator: "\n").count == 1, "stdout: \(o.stdout)")
        let j = try Self.json(o.stdout)
        for key in ["verdict", "exit_code", "signal", "wall_ms", "cpu_ms", "memory_peak_bytes", "stdout", "stderr",
                    "stdout_bytes", "stderr_bytes", "stdout_truncated", "stderr_truncated", "error"] {
            #expect(j.keys.contains(key), "missing \(key)")
        }
        #expect(j["verdict"] as? String == "exited")
        #expect(j["exit_code"] as? Int == 7)
        #expect(j["signal"] is NSNull)
        #expect(j["stdout"] as? String == "out\n")
        #expect(j["stderr"] as? String == "err\n")
        #expect(j["stdout_bytes"] as? Int == 4)
        #expect(j["stdout_truncated"] as? Bool == false)
        #expect(j["error"] is NSNull)
    }

    @Test("Without --json the output streams through and a report follows on stderr", .enabled(if: canSandbox))
    func runPlain() throws {
        let o = try Self.confine(["run", "--", "/bin/bash", "-c", "echo hello; echo oops >&2"])
        #expect(o.status == 0)
        #expect(o.stdout == "hello\n")
        #expect(o.stderr.hasPrefix("oops\n"))
        #expect(o.stderr.contains("confine: exited 0"))
    }

    @Test("Exit statuses: signal, wall_timeout, memory_limit, setup_failed, bad limit", .enabled(if: canSandbox))
    func exitStatuses() throws {
        #expect(try Self.confine(["run", "--", "/bin/bash", "-c", "kill -TERM $$"]).status == 128 + SIGTERM)
        let wall = try Self.confine(["run", "--json", "--limit", "wall_time=500ms", "--", "/bin/sleep", "10"])
        #expect(wall.status == 124)
        #expect(try Self.json(wall.stdout)["verdict"] as? String == "wall_timeout")
        let memory = try Self.confine(["run", "--json", "--limit", "memory=32MiB", "--", "/usr/bin/python3", "-c", "x = bytearray(200 << 20)"])
        #expect(memory.status == 122, "\(memory.stdout)")
        #expect(try Self.json(memory.stdout)["verdict"] as? String == "memory_limit")
        let setup = try Self.confine(["run", "--json", "--", "/no/such/program"])
        #expect(setup.status == 125)
        let j = try Self.json(setup.stdout)
        #expect(j["verdict"] as? String == "setup_failed")
        #expect(j["error"] as? String == "execve /no/such/program: ENOENT (No such file or directory)")
        let looser = try Self.confine(["run", "--limit", "memory=100GiB", "--", "/bin/true"])
        #expect(looser.status == 78)
        #expect(looser.stderr.contains("memory"), "\(looser.stderr)")
    }

    @Test("--stdin, --file and --env reach the program", .enabled(if: canSandbox))
    func inputs() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("confine-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "line one\nline two\n".write(to: dir.appendingPathComponent("input.txt"), atomically: true, encoding: .utf8)
        try "import sys\nprint(sys.stdin.read().upper(), end='')\n".write(to: dir.appendingPathComponent("up.py"), atomically: true, encoding: .utf8)
        let o = try Self.confine(["run", "--stdin", dir.appendingPathComponent("input.txt").path,
                                  "--file", dir.appendingPathComponent("up.py").path,
                                  "--", "/usr/bin/python3", "/sandbox/up.py"])
        #expect(o.stdout == "LINE ONE\nLINE TWO\n", "\(o.stderr)")
        // Without --file, the script is not there, and confine says how to deliver it.
        let script = dir.appendingPathComponent("up.py").path
        let missing = try Self.confine(["run", "--", "/usr/bin/python3", script])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("note: \(script) is a file on the host"), "\(missing.stderr)")
        #expect(missing.stderr.contains("--file \(script)"))
        let env = try Self.confine(["run", "--env", "NOT_ALLOWED=1", "--", "/usr/bin/env"])
        #expect(env.status == 78)
        #expect(env.stderr.contains("NOT_ALLOWED"))
    }

    @Test("policy check: valid files print the effective policy; invalid ones name file, key and expectation")
    func policyCheck() throws {
        let ok = try Self.confine(["policy", "check", "policies/default.yaml", "policies/strict.yaml", "policies/networked.yaml"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("wall_time: 10s"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("confine-policy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("bad.yaml")
        try "limits:\n  memory: lots\ndeny_netwrok: true\n".write(to: bad, atomically: true, encoding: .utf8)
        let o = try Self.confine(["policy", "check", bad.path])
        #expect(o.status == 1)
        #expect(o.stderr.contains("bad.yaml"))
        #expect(o.stderr.contains("limits.memory"))
        #expect(o.stderr.contains("deny_netwrok"))
    }
}
