import ConfineTestSupport
import Foundation
import Glibc
import Testing

/// Sandboxes of `confine serve` are born from its spawner: nothing of the server's memory is in
/// them, and the spawner dying under load loses nothing.
/// Whether a `confine serve` child can run sandboxes here; says why not when it cannot.
enum SpawnerServeSupport {
    static var canSandbox: Bool {
        if geteuid() != 0 {
            print("SKIP tests of confine serve's spawner: sandboxes need root; running as uid \(geteuid())")
            return false
        }
        return true
    }
}

@Suite("confine serve and its spawner", .enabled(if: ServerProcess.available && SpawnerServeSupport.canSandbox))
struct SpawnerServeTests {
    /// The server's spawners: its children in the host's pid namespace.
    static func spawners(of server: Int32) -> [Int32] {
        ProcessMemory.children(of: server).filter { $0.nspid.count == 1 }.map(\.pid)
    }

    /// A policies folder: default, and `vault` (secrets API_*; a description holding `canary`).
    static func policies(canary: String) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("confine-spawner-policies-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let base = try String(contentsOf: LiveServer.repository.appendingPathComponent("policies/default.yaml"), encoding: .utf8)
        try base.write(to: folder.appendingPathComponent("default.yaml"), atomically: true, encoding: .utf8)
        let vault = base.replacingOccurrences(of: "allow: [TZ]", with: "allow: [TZ, API_*]")
            .replacingOccurrences(of: "description: General-purpose policy", with: "description: \(canary) General-purpose policy")
            .replacingOccurrences(of: "wall_time: 10s", with: "wall_time: 2m")
        try vault.write(to: folder.appendingPathComponent("vault.yaml"), atomically: true, encoding: .utf8)
        return folder
    }

    @Test("In a sandbox of confine serve, pid 1 is the spawner's small init holding nothing of the server's memory")
    func noServerInSandbox() async throws {
        let policyCanary = "policy-canary-\(UUID().uuidString)"
        let folder = try Self.policies(canary: policyCanary)
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try await ServerProcess(policies: folder.path)
        defer { server.stop() }
        // Another tenant's secret, decrypted by the server to launch its run.
        let otherSecret = "other-secret-\(UUID().uuidString)"
        let other = try await server.call("POST", "/jobs", json: """
            {"name": "other", "script_type": "bash", "script_content": "true", "policy": "vault", "secret_environment": {"API_KEY": "\(otherSecret)"}}
            """)
        let otherID = try #require(other.object["id"] as? Int, "\(other)")
        #expect(try await server.call("POST", "/jobs/\(otherID)/run?wait=true").object["status"] as? String == "SUCCESS")
        // This run's own secret is in its init (it received the run): it finds the right init.
        let ownSecret = "own-secret-\(UUID().uuidString)"
        let job = try await server.call("POST", "/jobs", json: """
            {"name": "looks", "script_type": "bash", "policy": "vault", "secret_environment": {"API_OWN": "\(ownSecret)"},
             "script_content": "tr '\\\\0' ' ' < /proc/1/cmdline; echo; grep -E '^VmRSS:' /proc/1/status; echo ready; sleep 100"}
            """)
        let jobID = try #require(job.object["id"] as? Int, "\(job)")
        let started = try await server.call("POST", "/jobs/\(jobID)/run")
        let executionID = try #require(started.object["execution_id"] as? Int, "\(started)")
        defer { Task { try? await server.call("POST", "/executions/\(executionID)/cancel") } }
        var stdout = ""
        for _ in 0..<300 where !stdout.contains("ready") {
            stdout = String(decoding: try await server.call("GET", "/executions/\(executionID)/output?stream=stdout", record: false).body, as: UTF8.self)
            try await Task.sleep(for: .milliseconds(100))
        }
        try #require(stdout.contains("ready"), "the run never started: \(stdout)")
        let lines = stdout.split(separator: "\n")
        #expect(lines.first?.contains("confine-spawner") == true, "pid 1 is \(lines.first ?? "")")
        #expect(lines.first?.contains("serve") == false, "pid 1 shows the server's command line: \(lines.first ?? "")")
        let rssKB = Int(lines.dropFirst().first?.split(whereSeparator: \.isWhitespace).dropFirst().first ?? "") ?? Int.max
        #expect(rssKB < 8 * 1024, "the sandbox's pid 1 is resident in \(rssKB) kB")

        // The policy canary lives in the server for good (its loaded policies): the reading works.
        let canaries = [policyCanary, otherSecret, server.adminToken].map { Array($0.utf8) }
        let inServer = await ProcessMemory.holding(server.pid, [canaries[0]])
        #expect(inServer == [true], "the policy canary is not in the server's memory: the reading is wrong")
        var found = false
        for pid in ProcessMemory.sandboxInits(of: server.pid) {
            guard let held = await ProcessMemory.holding(pid, [Array(ownSecret.utf8)] + canaries) else { continue }
            if held[0] { found = true }
            #expect(!held.dropFirst().contains(true), "init \(pid) holds server memory: \(held)")
        }
        #expect(found, "no init holding this run's own secret was found among the server's children")
    }

    @Test("The spawner killed with SIGKILL in the middle of a load loses no execution; /ready says what happened")
    func spawnerKilledUnderLoad() async throws {
        let folder = try Self.policies(canary: "unused")
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try await ServerProcess(policies: folder.path)
        defer { server.stop() }
        let job = try await server.call("POST", "/jobs", json: #"{"name": "quick", "script_type": "bash", "script_content": "echo done", "concurrency": "allow"}"#)
        let jobID = try #require(job.object["id"] as? Int, "\(job)")
        let spawner = try #require(Self.spawners(of: server.pid).first, "no spawner among the server's children")
        var ids: [Int] = []
        for i in 0..<40 {
            if i == 15 { #expect(kill(spawner, SIGKILL) == 0) }
            let answer = try await server.call("POST", "/jobs/\(jobID)/run")
            ids.append(try #require(answer.object["execution_id"] as? Int, "submission \(i): \(answer)"))
        }
        var finals: [Int: [String: Any]] = [:]
        let deadline = Date().addingTimeInterval(120)
        while finals.count < ids.count && Date() < deadline {
            for id in ids where finals[id] == nil {
                let execution = try await server.call("GET", "/executions/\(id)", record: false).object
                if let status = execution["status"] as? String, status != "PENDING", status != "RUNNING" { finals[id] = execution }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(finals.count == ids.count, "executions never ended: \(ids.filter { finals[$0] == nil })")
        var succeeded = 0
        for (id, execution) in finals {
            if execution["status"] as? String == "SUCCESS" { succeeded += 1; continue }
            // A launch in flight when the spawner died fails, naming it; nothing else may fail.
            let reason = execution["reason"] as? String ?? ""
            #expect(execution["verdict"] as? String == "setup_failed" && reason.contains("spawner"), "execution \(id): \(execution)")
        }
        #expect(succeeded >= ids.count - 4, "only \(succeeded) of \(ids.count) succeeded")
        let after = try await server.call("POST", "/jobs/\(jobID)/run?wait=true")
        #expect(after.object["status"] as? String == "SUCCESS", "\(after)")
        let ready = try await server.call("GET", "/ready")
        #expect(ready.status == 200, "\(ready)")
        let spawnerCheck = (ready.object["checks"] as? [String: Any])?["spawner"] as? String ?? ""
        #expect(spawnerCheck.contains("restarted 1 time") && spawnerCheck.contains("SIGKILL"), "/ready says \(spawnerCheck)")
        let spawners = Self.spawners(of: server.pid)
        #expect(spawners.count == 1 && spawners.first != spawner, "spawners now: \(spawners)")
    }
}
