import ConfineTestSupport
import Foundation
import Testing

/// A PostgreSQL server that goes away under a running `confine serve`, and one that cannot be
/// had at start: each test has a cluster of its own (`ThrowawayPostgres`), so stopping it hurts
/// no other test. Skipped, saying so, where PostgreSQL's server is not installed.
@Suite("PostgreSQL outages", .serialized)
struct PostgresOutageTests {
    typealias Node = MultiNodeTests

    /// Polls `done` every 100 ms for up to `seconds`; whether it came true.
    static func eventually(_ seconds: Double = 60, _ done: () async throws -> Bool) async rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await done() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return try await done()
    }

    @Test("The database stopped under two nodes: /ready says so, submissions and reads 503 store-unavailable with Retry-After, runs that end meanwhile are stored when it returns (neither node judged dead), and the nodes serve again by themselves")
    func outage() async throws {
        guard FileManager.default.isExecutableFile(atPath: CLITests.binary) else {
            print("SKIP \(#function): \(CLITests.binary) is not built")
            return
        }
        guard let cluster = try await ThrowawayPostgres.make() else { return }
        defer { cluster.remove() }
        // node_timeout (3 s) shorter than the outage, which lasts until both runs (5 s) ended:
        // when the database returns, every node's heartbeat is older than node_timeout, and
        // still no node may take over the other's runs.
        var nodes: [ConfineServerProcess] = []
        defer { nodes.forEach { $0.stop() } }
        for n in 0..<2 {
            nodes.append(try await ConfineServerProcess(binary: CLITests.binary, policies: CLITests.repoRoot + "/policies",
                                                        extraConfig: "workers: 1\nnode_name: outage-\(n)\nnode_timeout: 3s\n"
                                                            + (n == 0 ? "public_routes: ready\n" : ""),
                                                        label: "confine-outage\(n)", database: cluster.url))
        }
        let node = nodes[0]
        let token = node.adminToken
        try #require(!token.isEmpty, "the first node wrote admin.token")
        let pids = nodes.map(\.pid)
        let made = Node.object(try await Node.call(node, "POST", "/jobs", """
            {"name": "outlast", "script_type": "bash", "script_content": "sleep 5; echo finished", "concurrency": "allow",
             "policy": "networked"}
            """, token: token))
        let job = try #require(made["id"] as? Int, "\(made)")
        var ids: [Int] = []
        for n in 0..<2 {
            let run = Node.object(try await Node.call(nodes[n], "POST", "/jobs/\(job)/run", token: token))
            ids.append(try #require(run["execution_id"] as? Int, "\(run)"))
        }
        // (networked.yaml: a 30 s wall_time, room for a loaded machine's slow starts.)
        // One worker per node: both running means one on each.
        for id in ids {
            let running = try await Node.waitFor(node, id, token: token) { $0["status"] as? String == "RUNNING" }
            try #require(running["status"] as? String == "RUNNING", "\(running)")
        }

        try await cluster.stop()

        // /ready (open to probes on node 0): not ready, the store's check saying why.
        let ready = try await Node.exchange(node, "GET", "/ready", token: "")
        #expect(ready.status == 503, "\(ready)")
        #expect((ready.json as? [String: Any])?["type"] as? String == "https://confine.dev/problems/not-ready", "\(ready)")
        let checks = (ready.json as? [String: Any])?["checks"] as? [String: Any] ?? [:]
        let store = checks["store"] as? String ?? ""
        #expect(store != "ok" && store.contains("PostgreSQL at postgres://confine@localhost"), "the store check says why: \(ready)")
        // Behind a token (node 1), the token cannot be checked: 503 store-unavailable too.
        let guarded = try await Node.exchange(nodes[1], "GET", "/ready", token: token)
        #expect(guarded.status == 503, "\(guarded)")
        #expect((guarded.json as? [String: Any])?["type"] as? String == "https://confine.dev/problems/store-unavailable", "\(guarded)")
        // A submission: 503 store-unavailable with Retry-After.
        let refused = try await Node.exchange(node, "POST", "/jobs/\(job)/run", token: token)
        #expect(refused.status == 503, "\(refused)")
        #expect((refused.json as? [String: Any])?["type"] as? String == "https://confine.dev/problems/store-unavailable", "\(refused)")
        #expect(Int(refused.headers["retry-after"] ?? "") ?? 0 > 0, "Retry-After: \(refused.headers)")
        // A read: 503 too.
        let read = try await Node.exchange(node, "GET", "/executions/\(ids[0])", token: token)
        #expect(read.status == 503, "\(read)")
        #expect((read.json as? [String: Any])?["type"] as? String == "https://confine.dev/problems/store-unavailable", "\(read)")
        // The runs end while the database is down: their ends wait in memory (each node says so).
        for n in nodes.indices {
            let kept = await Self.eventually { nodes[n].log.contains("the end of this execution is kept in memory") }
            #expect(kept, "node \(n) kept the end of its run while the database was down:\n\(nodes[n].log)")
        }

        try await cluster.start()

        // Back by themselves: ready again, the same processes.
        for n in nodes.indices {
            let back = try await Self.eventually { try await Node.exchange(nodes[n], "GET", "/ready", token: token).status == 200 }
            #expect(back, "node \(n) ready again once the database returned:\n\(nodes[n].log)")
        }
        #expect(nodes.allSatisfy(\.isRunning) && nodes.map(\.pid) == pids, "no restart")
        // Nothing accepted was lost: each run's end, kept in memory, is stored.
        for id in ids {
            let ended = try await Node.waitFor(node, id, token: token, until: Node.isFinal)
            #expect(ended["status"] as? String == "SUCCESS" && ended["stdout"] as? String == "finished\n", "\(ended)")
        }
        for n in nodes.indices {
            // The node logs it once the write returns: another node may read the end first.
            let stored = await Self.eventually(10) { nodes[n].log.contains("the end of this execution was stored") }
            #expect(stored, "\(nodes[n].log)")
            #expect(!nodes[n].log.contains("took over"), "no node judged the other dead: \(nodes[n].log)")
        }
        // And they serve: a new run is accepted and runs.
        let again = Node.object(try await Node.call(nodes[1], "POST", "/jobs/\(job)/run", token: token))
        let next = try #require(again["execution_id"] as? Int, "\(again)")
        let done = try await Node.waitFor(node, next, token: token, until: Node.isFinal)
        #expect(done["status"] as? String == "SUCCESS", "\(done)")
        let listed = try await Node.call(node, "GET", "/nodes", token: token)
        #expect((listed.json as? [[String: Any]] ?? []).map { $0["state"] as? String ?? "" } == ["alive", "alive"], "\(listed)")
    }

    @Test("An unreachable database stops confine serve after the bounded wait, naming the address (password hidden) and the reason")
    func unreachableAtStart() async throws {
        guard FileManager.default.isExecutableFile(atPath: CLITests.binary) else {
            print("SKIP \(#function): \(CLITests.binary) is not built")
            return
        }
        // A socket folder where no server is.
        let nowhere = FileManager.default.temporaryDirectory.appendingPathComponent("confine-nopg-\(UUID().uuidString.prefix(8))").path
        let failure = await Self.failedStart(database: "postgres://someone:s3cret@localhost:5432/confine?host=\(nowhere)")
        #expect(failure.contains("exited with status 74"), "exit status 74 (the database cannot be opened): \(failure)")
        #expect(failure.contains("cannot reach PostgreSQL at postgres://someone:***@localhost:5432/confine"), "\(failure)")
        #expect(failure.contains("within 30 s"), "the bounded wait is said: \(failure)")
        #expect(failure.contains("No such file or directory"), "the reason: \(failure)")
        #expect(!failure.contains("s3cret"), "the password never appears: \(failure)")
    }

    @Test("A refused login stops confine serve at once (no waiting), saying so, the password hidden")
    func refusedLogin() async throws {
        guard FileManager.default.isExecutableFile(atPath: CLITests.binary) else {
            print("SKIP \(#function): \(CLITests.binary) is not built")
            return
        }
        guard let cluster = try await ThrowawayPostgres.make() else { return }
        defer { cluster.remove() }
        let failure = await Self.failedStart(database: cluster.url(user: ThrowawayPostgres.guardedUser, password: "wrong-secret"))
        #expect(failure.contains("exited with status 74"), "\(failure)")
        #expect(failure.contains("refused the login"), "\(failure)")
        #expect(failure.contains("password authentication failed"), "PostgreSQL's own reason: \(failure)")
        #expect(failure.contains("postgres://\(ThrowawayPostgres.guardedUser):***@localhost:5432/confine"), "\(failure)")
        #expect(!failure.contains("wrong-secret"), "the password never appears: \(failure)")
        // At once: the refusal is not the bounded wait's message ("cannot reach … within 30 s").
        #expect(!failure.contains("cannot reach"), "\(failure)")
    }

    /// Starts `confine serve` on `database`, which must fail, and waits for its end (90 s at
    /// most): its exit status and everything it wrote, as one text.
    static func failedStart(database: String) async -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("confine-nodb-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let config = folder.appendingPathComponent("confine.yaml")
            try """
                listen: 127.0.0.1:\(try ConfineServerProcess.freePort())
                database: "\(database)"
                policies: \(CLITests.repoRoot)/policies
                """.write(to: config, atomically: true, encoding: .utf8)
            let log = folder.appendingPathComponent("server.log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            defer { try? handle.close() }
            let process = ConfineServerProcess.serveProcess(binary: CLITests.binary, config: config, folder: folder, log: handle)
            try ProcessLaunch.run(process)
            let deadline = Date().addingTimeInterval(90)
            while process.isRunning, Date() < deadline { try? await Task.sleep(for: .milliseconds(100)) }
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
                return "confine serve was still running after 90 s: " + ((try? String(contentsOf: log, encoding: .utf8)) ?? "")
            }
            process.waitUntilExit()
            return "confine serve exited with status \(process.terminationStatus):\n" + ((try? String(contentsOf: log, encoding: .utf8)) ?? "")
        } catch {
            return "could not start confine serve: \(error)"
        }
    }
}
