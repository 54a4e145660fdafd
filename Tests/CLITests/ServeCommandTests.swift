import ConfineTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Glibc
import Testing

/// `confine serve` refusing to start, each time with the piece named and its own exit status.
@Suite("confine serve start-up")
struct ServeCommandTests {
    func temporary(_ name: String, _ text: String? = nil) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("confine-serve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent(name).path
        if let text { try text.write(toFile: path, atomically: true, encoding: .utf8) }
        return path
    }

    @Test("An invalid configuration stops the start with the key named (exit 78)")
    func badConfiguration() throws {
        let config = try temporary("confine.yaml", "listen: 127.0.0.1:0\nqueue_limt: 5\n")
        let outcome = try CLITests.confine(["serve", "--config", config])
        #expect(outcome.status == 78, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("queue_limt: unknown key (did you mean \"queue_limit\"?)"), "\(outcome.stderr)")
    }

    @Test("A broken policies folder stops the start with the file and key named (exit 78)")
    func badPolicies() throws {
        let policies = try temporary("default.yaml", "limits:\n  memroy: 1MiB\n")
        let folder = URL(fileURLWithPath: policies).deletingLastPathComponent().path
        let outcome = try CLITests.confine(["serve", "--listen", "127.0.0.1:0", "--policies", folder,
                                            "--database", folder + "/db.sqlite"])
        #expect(outcome.status == 78, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("memroy"), "\(outcome.stderr)")
    }

    @Test("A database that cannot be opened stops the start with the path named (exit 74)")
    func badDatabase() throws {
        let garbage = try temporary("confine.sqlite", String(repeating: "not a database ", count: 100))
        let outcome = try CLITests.confine(["serve", "--listen", "127.0.0.1:0", "--database", garbage])
        #expect(outcome.status == 74, "\(outcome.stderr)")
        #expect(outcome.stderr.contains(garbage), "\(outcome.stderr)")
    }

    @Test("SIGHUP reloads the policies folder: a new file comes into force; a broken one is refused and the rest stays")
    func hangupReloads() async throws {
        let policies = URL(fileURLWithPath: try temporary("placeholder")).deletingLastPathComponent()
        for name in ["default", "strict"] {
            try FileManager.default.copyItem(atPath: CLITests.repoRoot + "/policies/\(name).yaml",
                                             toPath: policies.appendingPathComponent("\(name).yaml").path)
        }
        let server = try await ClientVerbTests.Server(policies: policies.path)
        defer {
            server.stop()
            try? FileManager.default.removeItem(at: policies)
        }
        func names() async throws -> [String] {
            let list = try await server.request("GET", "/policies").json as? [[String: Any]] ?? []
            return list.compactMap { $0["name"] as? String }
        }
        func waitFor(_ expected: [String]) async throws -> [String] {
            let deadline = Date().addingTimeInterval(15)
            var seen = try await names()
            while seen != expected, Date() < deadline {
                try await Task.sleep(for: .milliseconds(100))
                seen = try await names()
            }
            return seen
        }
        #expect(try await names() == ["default", "strict"])
        try FileManager.default.copyItem(atPath: CLITests.repoRoot + "/policies/networked.yaml",
                                         toPath: policies.appendingPathComponent("networked.yaml").path)
        kill(server.pid, SIGHUP)
        #expect(try await waitFor(["default", "networked", "strict"]) == ["default", "networked", "strict"])

        try "limits:\n  memroy: 1MiB\n".write(to: policies.appendingPathComponent("broken.yaml"), atomically: true, encoding: .utf8)
        kill(server.pid, SIGHUP)
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await names() == ["default", "networked", "strict"], "a broken file leaves the policies in force")
        let log = try String(contentsOf: server.dir.appendingPathComponent("server.log"), encoding: .utf8)
        #expect(log.contains("broken.yaml") && log.contains("previous policies stay in force"), "\(log.suffix(800))")
    }

    @Test("log_format json: every line of the server's log is one JSON object; an execution's lines carry its ids")
    func jsonLogs() async throws {
        let server = try await ClientVerbTests.Server(extraConfig: "log_format: json")
        var stopped = false
        defer { if !stopped { server.stop() } }
        func post(_ path: String, _ body: String?) async throws -> [String: Any] {
            try await server.request("POST", path, body).json as? [String: Any] ?? [:]
        }
        let job = try #require(try await post("/jobs", #"{"name": "logged", "script_type": "bash", "script_content": "exit 3"}"#)["id"] as? Int)
        let execution = try #require(try await post("/executions/\(job)/run?wait=true", nil)["id"] as? Int)
        let log = try String(contentsOf: server.dir.appendingPathComponent("server.log"), encoding: .utf8)
        server.stop()
        stopped = true
        let lines = log.split(separator: "\n").map(String.init)
        #expect(lines.count >= 3, "\(log)")
        var finished: [String: Any]?
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object != nil, "not one JSON object: \(line)")
            guard let object else { continue }
            #expect((object["time"] as? String)?.hasSuffix("+00:00") == true && object["level"] is String && object["message"] is String, "\(line)")
            if object["message"] as? String == "execution finished" { finished = object }
        }
        let line = try #require(finished, "no line about the execution in \(log)")
        #expect(line["execution_id"] as? Int == execution && line["job_id"] as? Int == job, "\(line)")
        #expect(line["status"] as? String == "FAILED" && line["exit_code"] as? Int == 3, "\(line)")
    }

    @Test("Never a token or a secret in the log, even at debug level: requests with tokens, a job with a secret that runs, a refused token")
    func logsHoldNoSecrets() async throws {
        let policies = URL(fileURLWithPath: try temporary("placeholder")).deletingLastPathComponent()
        let base = try String(contentsOfFile: CLITests.repoRoot + "/policies/default.yaml", encoding: .utf8)
        try base.write(to: policies.appendingPathComponent("default.yaml"), atomically: true, encoding: .utf8)
        try base.replacingOccurrences(of: "allow: [TZ]", with: "allow: [TZ, API_*]")
            .write(to: policies.appendingPathComponent("vault.yaml"), atomically: true, encoding: .utf8)
        let server = try await ClientVerbTests.Server(policies: policies.path, extraConfig: "log_format: json\nlog_level: debug")
        var stopped = false
        defer {
            if !stopped { server.stop() }
            try? FileManager.default.removeItem(at: policies)
        }
        let secret = "hunter2-\(UUID().uuidString)"
        let made = try await server.request("POST", "/tokens", #"{"name": "logged", "role": "submitter"}"#)
        let token = try #require((made.json as? [String: Any])?["token"] as? String)
        let job = try await server.request("POST", "/jobs", """
            {"name": "vaulted", "script_type": "bash", "script_content": "test -n \\"$API_KEY\\"", "policy": "vault",
             "secret_environment": {"API_KEY": "\(secret)"}}
            """, token: token)
        let id = try #require((job.json as? [String: Any])?["id"] as? Int, "\(job)")
        let run = try await server.request("POST", "/jobs/\(id)/run?wait=true", token: token)
        #expect((run.json as? [String: Any])?["status"] as? String == "SUCCESS", "\(run)")
        _ = try await server.request("GET", "/jobs", token: token + "x")
        _ = try await server.request("GET", "/jobs?access_token=\(token)", token: token)
        let log = try String(contentsOf: server.dir.appendingPathComponent("server.log"), encoding: .utf8)
        server.stop()
        stopped = true
        #expect(log.contains("execution finished"), "\(log.suffix(500))")
        for (what, value) in [("the admin token", server.adminToken), ("a token", token), ("a secret", secret)] {
            #expect(!log.contains(value), "\(what) is in the log")
        }
    }

    @Test("A database locked by another process stops the start with the path and the reason (exit 74), after the busy timeout")
    func lockedDatabase() throws {
        let database = try temporary("locked.sqlite")
        // Another process creates the file and holds an exclusive lock on it while we start.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        holder.arguments = ["-c", """
            import sqlite3, sys, time
            db = sqlite3.connect(sys.argv[1], isolation_level=None)
            db.execute("CREATE TABLE t (x)")
            db.execute("BEGIN EXCLUSIVE")
            print("locked", flush=True)
            time.sleep(12)
            """, database]
        let ready = Pipe()
        holder.standardOutput = ready
        try ProcessLaunch.run(holder)
        defer { kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() }
        _ = ready.fileHandleForReading.availableData  // "locked"
        let outcome = try CLITests.confine(["serve", "--listen", "127.0.0.1:0", "--database", database])
        #expect(outcome.status == 74, "\(outcome.stderr)")
        #expect(outcome.stderr.contains(database) && outcome.stderr.contains("lock"), "\(outcome.stderr)")
    }
}
