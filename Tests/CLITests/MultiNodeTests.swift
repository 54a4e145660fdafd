import ConfineTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Glibc
import Testing

/// Three real `confine serve` processes on one PostgreSQL database (the test cluster of
/// `make test`): one service. Skipped, saying so, without a cluster.
@Suite("Many nodes, one PostgreSQL", .serialized)
struct MultiNodeTests {
    /// Three nodes started at once on a new database; `body` gets them and the admin token.
    static func withNodes(_ what: String = #function, extraConfig: String = "",
                          _ body: ([ConfineServerProcess], String) async throws -> Void) async throws {
        guard FileManager.default.isExecutableFile(atPath: CLITests.binary) else {
            print("SKIP \(what): \(CLITests.binary) is not built")
            return
        }
        // Three servers and their sandboxes beside the whole suite overloaded two cores: these
        // run in make test's PostgreSQL pass, with the API suite alone.
        guard TestPostgres.apiTestsUsePostgres else {
            print("SKIP \(what): runs in the PostgreSQL pass of make test (CONFINE_TEST_STORE=postgres and CONFINE_TEST_POSTGRES_URL)")
            return
        }
        try await TestPostgres.withDatabase(what) { url in
            // nodes[n] is node-n.
            let nodes = try await withThrowingTaskGroup(of: (Int, ConfineServerProcess).self) { group in
                for n in 0..<3 {
                    group.addTask {
                        (n, try await ConfineServerProcess(binary: CLITests.binary, policies: CLITests.repoRoot + "/policies",
                                                           extraConfig: "workers: 2\nnode_name: node-\(n)\nnode_timeout: 3s\n\(extraConfig)",
                                                           label: "confine-node\(n)", database: url))
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }.sorted { $0.0 < $1.0 }.map(\.1)
            }
            defer { nodes.forEach { $0.stop() } }
            let tokens = nodes.map(\.adminToken).filter { !$0.isEmpty }
            #expect(tokens.count == 1, "exactly one node wrote admin.token, whatever the race: \(tokens.count)")
            let token = try #require(tokens.first)
            try await body(nodes, token)
        }
    }

    /// One HTTP exchange: the status and the JSON answer.
    @discardableResult
    static func call(_ node: ConfineServerProcess, _ method: String, _ path: String, _ body: String? = nil, token: String)
        async throws -> (status: Int, json: Any?) {
        let answer = try await exchange(node, method, path, body, token: token)
        return (answer.status, answer.json)
    }

    /// One HTTP exchange: the status, the JSON answer and the response's headers.
    static func exchange(_ node: ConfineServerProcess, _ method: String, _ path: String, _ body: String? = nil, token: String)
        async throws -> (status: Int, json: Any?, headers: [String: String]) {
        var request = URLRequest(url: URL(string: node.url + path)!)
        request.httpMethod = method
        request.timeoutInterval = 60
        request.httpBody = body.map { Data($0.utf8) }
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as? HTTPURLResponse
        var headers: [String: String] = [:]
        for (name, value) in http?.allHeaderFields ?? [:] { headers["\(name)".lowercased()] = "\(value)" }
        return (http?.statusCode ?? 0, try? JSONSerialization.jsonObject(with: data), headers)
    }

    static func object(_ answer: (status: Int, json: Any?)) -> [String: Any] { answer.json as? [String: Any] ?? [:] }

    /// Polls an execution (through `node`) until `done` holds, 60 s at most.
    static func waitFor(_ node: ConfineServerProcess, _ id: Int, token: String,
                        until done: ([String: Any]) -> Bool) async throws -> [String: Any] {
        var last: [String: Any] = [:]
        for _ in 0..<600 {
            last = object(try await call(node, "GET", "/executions/\(id)", token: token))
            if done(last) { return last }
            try await Task.sleep(for: .milliseconds(100))
        }
        return last
    }

    static func isFinal(_ e: [String: Any]) -> Bool {
        guard let status = e["status"] as? String else { return false }
        return status != "PENDING" && status != "RUNNING"
    }

    @Test("Three nodes: one admin token, the same answers everywhere, the work shared, forbid exact, cancel and /nodes across nodes")
    func oneService() async throws {
        try await Self.withNodes { nodes, token in
            // A job made on one node is seen by all.
            let made = Self.object(try await Self.call(nodes[0], "POST", "/jobs", """
                {"name": "shared", "script_type": "bash", "script_content": "sleep 0.5; echo ran", "concurrency": "allow"}
                """, token: token))
            let job = try #require(made["id"] as? Int, "\(made)")
            for node in nodes {
                #expect(Self.object(try await Self.call(node, "GET", "/jobs/\(job)", token: token))["name"] as? String == "shared")
            }
            // Runs submitted to every node are claimed by several nodes.
            var ids: [Int] = []
            for i in 0..<12 {
                let run = Self.object(try await Self.call(nodes[i % 3], "POST", "/jobs/\(job)/run", token: token))
                ids.append(try #require(run["execution_id"] as? Int ?? run["id"] as? Int, "\(run)"))
            }
            var ranOn: [String: Int] = [:]
            for id in ids {
                let e = try await Self.waitFor(nodes[(id + 1) % 3], id, token: token, until: Self.isFinal)
                #expect(e["status"] as? String == "SUCCESS" && e["stdout"] as? String == "ran\n", "\(e)")
                ranOn[e["node"] as? String ?? "?", default: 0] += 1
            }
            #expect(ranOn.count >= 2, "the work was shared: \(ranOn)")
            #expect(Set(ranOn.keys).isSubset(of: ["node-0", "node-1", "node-2"]), "\(ranOn)")

            // forbid: 8 simultaneous runs of one job through 3 nodes, exactly one accepted.
            let solo = Self.object(try await Self.call(nodes[1], "POST", "/jobs", """
                {"name": "solo", "script_type": "bash", "script_content": "sleep 30", "concurrency": "forbid"}
                """, token: token))
            let soloID = try #require(solo["id"] as? Int)
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<8 { group.addTask { try await Self.call(nodes[i % 3], "POST", "/jobs/\(soloID)/run", token: token).status } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { (200..<300).contains($0) }.count == 1, "\(statuses)")
            #expect(statuses.filter { $0 == 409 }.count == 7, "\(statuses)")

            // Cancel on another node than the one running it.
            let active = Self.object(try await Self.call(nodes[0], "GET", "/executions?job_id=\(soloID)", token: token))
            let soloRun = try #require((active["executions"] as? [[String: Any]])?.first?["id"] as? Int, "\(active)")
            let running = try await Self.waitFor(nodes[0], soloRun, token: token) { $0["status"] as? String == "RUNNING" }
            let runner = try #require(running["node"] as? String, "\(running)")
            let elsewhere = try #require(nodes.indices.first { "node-\($0)" != runner }.map { nodes[$0] })
            let cancel = try await Self.call(elsewhere, "POST", "/executions/\(soloRun)/cancel", token: token)
            #expect((200..<300).contains(cancel.status), "\(cancel)")
            let cancelled = try await Self.waitFor(elsewhere, soloRun, token: token, until: Self.isFinal)
            #expect(cancelled["status"] as? String == "CANCELLED", "\(cancelled)")

            // Every node lists every node, alive.
            let listed = try await Self.call(nodes[2], "GET", "/nodes", token: token)
            let rows = listed.json as? [[String: Any]] ?? []
            #expect(rows.map { $0["name"] as? String ?? "" } == ["node-0", "node-1", "node-2"], "\(listed)")
            #expect(rows.allSatisfy { $0["state"] as? String == "alive" && $0["workers"] as? Int == 2 }, "\(rows)")
            // Each says the product version, as `confine --version` prints it.
            let version = try CLITests.confine(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(!version.isEmpty && rows.allSatisfy { $0["version"] as? String == version }, "\(version): \(rows)")

            // A clean stop (SIGTERM): exit 0, the database's connections closed, the row `stopped`.
            #expect(nodes[2].stopGracefully() == 0, "\(nodes[2].log)")
            #expect(nodes[2].log.contains("closed the connections to PostgreSQL at"), "\(nodes[2].log)")
            let after = try await Self.call(nodes[0], "GET", "/nodes", token: token)
            let states = (after.json as? [[String: Any]] ?? []).map { "\($0["name"] ?? ""):\($0["state"] ?? "")" }
            #expect(states == ["node-0:alive", "node-1:alive", "node-2:stopped"], "\(after)")
        }
    }

    @Test("kill -9 of a node under load: every accepted execution ends, none twice; the dead node's RUNNING ones interrupted")
    func nodeLost() async throws {
        try await Self.withNodes { nodes, token in
            let made = Self.object(try await Self.call(nodes[0], "POST", "/jobs", """
                {"name": "load", "script_type": "bash", "script_content": "sleep 2; echo done", "concurrency": "allow"}
                """, token: token))
            let job = try #require(made["id"] as? Int)
            var ids: [Int] = []
            for i in 0..<12 {
                let run = Self.object(try await Self.call(nodes[i % 3], "POST", "/jobs/\(job)/run", token: token))
                ids.append(try #require(run["execution_id"] as? Int ?? run["id"] as? Int, "\(run)"))
            }
            // Wait until node-2 runs something, then kill it.
            var onVictim: Set<Int> = []
            for _ in 0..<100 where onVictim.isEmpty {
                let page = Self.object(try await Self.call(nodes[0], "GET", "/executions?status=RUNNING&limit=100", token: token))
                onVictim = Set((page["executions"] as? [[String: Any]] ?? []).filter { $0["node"] as? String == "node-2" }
                    .compactMap { $0["id"] as? Int })
                if onVictim.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(!onVictim.isEmpty, "node-2 ran something")
            nodes[2].killHard()
            // What node-2 ran when it died, read after the kill: its rows stay RUNNING until the
            // take-over (node_timeout later), while the listing above may have raced a run of it
            // that ended just before the kill.
            let atKill = Self.object(try await Self.call(nodes[0], "GET", "/executions?status=RUNNING&limit=100", token: token))
            onVictim = Set((atKill["executions"] as? [[String: Any]] ?? []).filter { $0["node"] as? String == "node-2" }
                .compactMap { $0["id"] as? Int })
            var interrupted: Set<Int> = []
            for id in ids {
                let e = try await Self.waitFor(nodes[id % 2], id, token: token, until: Self.isFinal)
                #expect(Self.isFinal(e), "execution \(id) ended: \(e)")
                if e["verdict"] as? String == "interrupted" {
                    interrupted.insert(id)
                    #expect(e["node"] as? String == "node-2", "\(e)")
                } else {
                    #expect(e["status"] as? String == "SUCCESS" && e["stdout"] as? String == "done\n", "ran once, whole: \(e)")
                }
            }
            #expect(onVictim.isSubset(of: interrupted), "the dead node's RUNNING executions ended interrupted: \(onVictim) vs \(interrupted)")
            #expect(interrupted.isSubset(of: Set(ids)))
            #expect(!interrupted.isEmpty, "the dead node's RUNNING ones ended interrupted")
            let listed = try await Self.call(nodes[0], "GET", "/nodes", token: token)
            let states = Dictionary(uniqueKeysWithValues: (listed.json as? [[String: Any]] ?? []).map {
                ($0["name"] as? String ?? "", $0["state"] as? String ?? "")
            })
            #expect(states == ["node-0": "alive", "node-1": "alive", "node-2": "dead"], "\(states)")
            // Back again: its start removes what its killed run left (run cgroups), and it is alive.
            try await nodes[2].restart()
            let again = try await Self.call(nodes[2], "GET", "/nodes", token: token)
            #expect((again.json as? [[String: Any]] ?? []).allSatisfy { $0["state"] as? String == "alive" }, "\(again)")
        }
    }

    @Test("Following on node B an execution running on node A: its first line arrives while it runs, before its second line and its end")
    func followAcrossNodes() async throws {
        try await Self.withNodes { nodes, token in
            let made = Self.object(try await Self.call(nodes[0], "POST", "/jobs", """
                {"name": "talker", "script_type": "bash", "script_content": "echo first; sleep 4; echo second", "concurrency": "allow"}
                """, token: token))
            let job = try #require(made["id"] as? Int, "\(made)")
            let run = Self.object(try await Self.call(nodes[0], "POST", "/jobs/\(job)/run", token: token))
            let id = try #require(run["execution_id"] as? Int, "\(run)")
            let running = try await Self.waitFor(nodes[0], id, token: token) { $0["status"] as? String == "RUNNING" }
            let runner = try #require(running["node"] as? String, "\(running)")
            let follower = try #require(nodes.indices.first { "node-\($0)" != runner }.map { nodes[$0] })
            let stream = try FollowedStream(node: follower, path: "/executions/\(id)/output?follow=true", token: token)
            defer { stream.close() }
            // The first line, read on another node than the one running it…
            let first = await PostgresOutageTests.eventually { stream.events.contains { $0.event == "output" && $0.data.contains("first") } }
            #expect(first, "the first line came through node B: \(stream.text)")
            // …while the execution still runs there (asked after the line arrived).
            let now = Self.object(try await Self.call(follower, "GET", "/executions/\(id)", token: token))
            #expect(now["status"] as? String == "RUNNING" && now["node"] as? String == runner, "\(now)")
            let ended = await PostgresOutageTests.eventually { stream.events.contains { $0.event == "end" } }
            #expect(ended, "the stream ended: \(stream.text)")
            let events = stream.events
            let firstAt = events.firstIndex { $0.event == "output" && $0.data.contains("first") }
            let secondAt = events.firstIndex { $0.event == "output" && $0.data.contains("second") }
            let endAt = events.firstIndex { $0.event == "end" }
            #expect(firstAt != nil && secondAt != nil && endAt != nil, "\(events)")
            if let firstAt, let secondAt, let endAt {
                #expect(firstAt < secondAt && secondAt < endAt, "first line, then second line, then the end: \(events)")
                #expect(!events[firstAt].data.contains("second"), "the first line came alone, before the second existed")
            }
            #expect(events.last?.data.contains("SUCCESS") == true, "\(events)")
        }
    }

    @Test("A token revoked on one node is refused by another at its next request")
    func revocationAcrossNodes() async throws {
        try await Self.withNodes { nodes, token in
            let made = Self.object(try await Self.call(nodes[0], "POST", "/tokens", #"{"name": "short-lived", "role": "viewer"}"#,
                                                       token: token))
            let id = try #require(made["id"] as? Int, "\(made)")
            let viewer = try #require(made["token"] as? String, "\(made)")
            #expect(try await Self.call(nodes[1], "GET", "/whoami", token: viewer).status == 200, "valid on another node")
            #expect(try await Self.call(nodes[1], "GET", "/jobs", token: viewer).status == 200)
            let revoked = try await Self.call(nodes[2], "DELETE", "/tokens/\(id)", token: token)
            #expect(revoked.status == 200, "\(revoked)")
            for node in nodes {
                let refused = try await Self.call(node, "GET", "/whoami", token: viewer)
                #expect(refused.status == 401, "refused on every node at once: \(refused)")
                #expect((Self.object(refused)["detail"] as? String ?? "").contains("revoked"), "\(refused)")
            }
        }
    }
}

/// A followed output (`GET …/output?follow=true`) read by `curl -N` into a file, as it comes:
/// the server-sent events in the order they arrived.
final class FollowedStream: @unchecked Sendable {
    private let process = Process()
    private let file: URL

    /// One event: its name and its data line(s).
    struct Event: CustomStringConvertible {
        var event: String
        var data: String
        var description: String { "\(event): \(data.prefix(200))" }
    }

    init(node: ConfineServerProcess, path: String, token: String) throws {
        file = FileManager.default.temporaryDirectory.appendingPathComponent("confine-follow-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        let handle = try FileHandle(forWritingTo: file)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-sSN", "--max-time", "120", "-H", "Authorization: Bearer \(token)", "-H", "Accept: text/event-stream",
                             node.url + path]
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try ProcessLaunch.run(process)
        try handle.close()
    }

    deinit { close() }

    /// Everything received so far.
    var text: String { (try? String(contentsOf: file, encoding: .utf8)) ?? "" }

    /// The complete events received so far, in order.
    var events: [Event] {
        text.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n\n").dropLast().compactMap { block in
            var name = "message", data: [String] = []
            for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("event:") { name = line.dropFirst(6).trimmingCharacters(in: .whitespaces) }
                if line.hasPrefix("data:") { data.append(String(line.dropFirst(5)).trimmingCharacters(in: .whitespaces)) }
            }
            return data.isEmpty ? nil : Event(event: name, data: data.joined(separator: "\n"))
        }
    }

    /// Stops reading and removes the file.
    func close() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: file)
    }
}
