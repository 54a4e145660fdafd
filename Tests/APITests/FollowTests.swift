import Foundation
import API
import Testing

/// `GET /executions/{id}/output?follow=true` on a real server: Server-Sent Events from the
/// start (while PENDING), mid-way, after the end, resumed with `Last-Event-ID`, past a cap, with
/// keep-alives, at shutdown, and with a client that stops reading while the script floods.
@Suite("Followed output")
struct FollowTests {
    /// A policies folder with the shipped policies and `flood`: the default policy with room
    /// for 256 MiB of stdout and a minute of time (scripts that must outlast a test's steps on
    /// a loaded machine use it too).
    static func floodPolicies() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("confine-follow-policies-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let shipped = LiveServer.repository.appendingPathComponent("policies")
        for name in try FileManager.default.contentsOfDirectory(atPath: shipped.path) where name.hasSuffix(".yaml") {
            try FileManager.default.copyItem(at: shipped.appendingPathComponent(name), to: folder.appendingPathComponent(name))
        }
        let base = try String(contentsOf: shipped.appendingPathComponent("default.yaml"), encoding: .utf8)
        let flood = base.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            if line.hasPrefix("  wall_time:") { return "  wall_time: 60s" }
            if line.hasPrefix("  cpu_time:") { return "  cpu_time: 60s" }
            if line.hasPrefix("  stdout:") { return "  stdout: 512MiB" }
            return String(line)
        }.joined(separator: "\n")
        try flood.write(to: folder.appendingPathComponent("flood.yaml"), atomically: true, encoding: .utf8)
        return folder
    }

    static func run(_ server: LiveServer, _ job: Int, _ body: String? = nil) async throws -> Int {
        let answer = try await server.post("/executions/\(job)/run", body)
        return try #require(answer.object["execution_id"] as? Int, "\(answer)")
    }

    /// The execution's listing entry (no output: a flood's output must not be loaded here).
    static func summary(_ server: LiveServer, _ id: Int) async throws -> [String: Any] {
        let page = try await server.get("/executions?limit=1&cursor=\(id + 1)").object
        let found = (page["executions"] as? [[String: Any]])?.first { $0["id"] as? Int == id }
        return try #require(found, "execution \(id) not listed")
    }

    static func waitFor(_ server: LiveServer, _ id: Int, seconds: Double = 60,
                        until done: ([String: Any]) -> Bool) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let e = try await summary(server, id)
            if done(e) { return e }
            if Date() > deadline { throw TestFailure("execution \(id) never got there: \(e)") }
            try await Task.sleep(for: .milliseconds(30))
        }
    }

    static func rawOutput(_ server: LiveServer, _ id: Int, _ stream: String = "stdout") async throws -> Data {
        try await server.get("/executions/\(id)/output?stream=\(stream)").body
    }

    // MARK: Tests

    /// A server whose policies include `flood`; removes the folder afterwards.
    static func withRoomyServer(_ tweak: @escaping (inout ServerConfiguration) -> Void = { _ in },
                                _ body: (LiveServer) async throws -> Void) async throws {
        let policies = try floodPolicies()
        defer { try? FileManager.default.removeItem(at: policies) }
        try await LiveServer.with({ $0.policies = policies.path; tweak(&$0) }, body)
    }

    static let roomy = #", "policy": "flood""#

    @Test("From the start: a PENDING execution is waited for, then its output streams in order, then its end")
    func fromTheStart() async throws {
        try await Self.withRoomyServer({ $0.engine.workers = 1 }) { server in
            // A blocker holds the only worker: the followed execution is PENDING when followed.
            let blocker = try await Self.run(server, try await server.job("blocker", "bash", "sleep 50", extra: Self.roomy))
            _ = try await Self.waitFor(server, blocker) { $0["status"] as? String == "RUNNING" }
            let script = #"for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.1; done; printf 'caf\xc3\xa9 \xff\n'; exit 3"#
            let id = try await Self.run(server, try await server.job("talker", "bash", script))
            let client = try EventStreamClient(baseURL: server.baseURL, token: server.adminToken, path: "/executions/\(id)/output?follow=true")
            client.startReading()
            while client.head == nil { try await Task.sleep(for: .milliseconds(20)) }
            #expect(client.head?.status == 200 && client.head?.headers["content-type"] == "text/event-stream")
            #expect(try await Self.summary(server, id)["status"] as? String == "PENDING", "followed while pending")
            try await server.post("/executions/\(blocker)/cancel")

            let events = try await client.waitEnd()
            client.record()
            let (stdout, stderr) = outputBytes(events)
            let end = try #require(events.last)
            #expect(end.event == "end" && end.id == "\(stdout.count):\(stderr.count)" && end.json["stdout"] == nil, "\(end)")
            let kept = (try await Self.rawOutput(server, id), try await Self.rawOutput(server, id, "stderr"))
            #expect(stdout == kept.0 && stderr == kept.1)
            // Unless a loaded machine starved the script past its wall time:
            if end.json["status"] as? String != "TIMED_OUT" {
                #expect(stdout == Data("out 1\nout 2\nout 3\ncaf\u{e9} ".utf8) + Data([0xff, 0x0a]))
                #expect(stderr == Data("err 1\nerr 2\nerr 3\n".utf8))
                #expect(events.contains { $0.json["encoding"] as? String == "base64" }, "the invalid bytes come as base64")
                #expect(end.json["status"] as? String == "FAILED" && end.json["exit_code"] as? Int == 3)
            }
            #expect(events.filter { $0.event == "output" }.first?.json["encoding"] as? String == "utf-8")
            #expect(events.filter { $0.event == "end" }.count == 1)
        }
    }

    @Test("Mid-way: what was stored comes first, then the live output, each byte once; an offset starts there")
    func midWay() async throws {
        try await Self.withRoomyServer { server in
            let job = try await server.job("counter", "bash", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.02; done",
                                           extra: Self.roomy)
            let id = try await Self.run(server, job)
            let running = try await Self.waitFor(server, id) { ($0["stdout_bytes"] as? Int ?? 0) >= 60 }
            #expect(running["status"] as? String == "RUNNING")
            let stored = running["stdout_bytes"] as? Int ?? 0
            let fromStart = try EventStreamClient(baseURL: server.baseURL, token: server.adminToken, path: "/executions/\(id)/output?follow=true")
            let fromOffset = try EventStreamClient(baseURL: server.baseURL, token: server.adminToken, path: "/executions/\(id)/output?follow=true&offset=13:0")
            let stdoutOnly = try EventStreamClient(baseURL: server.baseURL, token: server.adminToken,
                                                   path: "/executions/\(id)/output?follow=true&stream=stdout&offset=7&encoding=base64")
            for client in [fromStart, fromOffset, stdoutOnly] { client.startReading() }
            // Well past what was stored when they connected: live output reached them.
            try await fromStart.wait { outputBytes($0).stdout.count >= stored + 200 }
            try await server.post("/executions/\(id)/cancel")

            let all = try await fromStart.waitEnd()
            let later = try await fromOffset.waitEnd()
            let one = try await stdoutOnly.waitEnd()
            for client in [fromStart, fromOffset, stdoutOnly] { client.record() }
            let stdout = try await Self.rawOutput(server, id)
            #expect(stdout.count >= stored + 200)
            #expect(outputBytes(all).stdout == stdout, "every byte once, in order")
            #expect(outputBytes(later, from: (13, 0)).stdout == stdout.dropFirst(13))
            #expect(outputBytes(one, from: (7, 0)).stdout == stdout.dropFirst(7))
            #expect(one.allSatisfy { $0.event != "output" || ($0.json["stream"] as? String == "stdout" && $0.json["encoding"] as? String == "base64") })
            for events in [all, later, one] {
                #expect(events.last?.event == "end" && events.last?.json["status"] as? String == "CANCELLED")
            }
            #expect(one.last?.id == "\(stdout.count):0")
        }
    }

    @Test("After the end: replayed from the store, then the end; Last-Event-ID at the end gives the end alone")
    func afterTheEnd() async throws {
        try await LiveServer.with { server in
            let job = try await server.job("done", "bash", "seq 1 20000; echo warn >&2")
            let id = try await Self.run(server, job, #"{"wait": true}"#)
            let stdout = try await Self.rawOutput(server, id)
            #expect(stdout.count == 108_894)
            let replay = try EventStreamClient(baseURL: server.baseURL, token: server.adminToken, path: "/executions/\(id)/output?follow=true")
            replay.startReading()
            let events = try await replay.waitEnd()
            replay.record()
            let (out, err) = outputBytes(events)
            #expect(out == stdout && err == Data("warn\n".utf8))
            #expect(events.filter { $0.event == "output" }.count >= 2, "a large stream comes in several events")
            let end = try #require(events.last)
            #expect(end.event == "end" && end.json["status"] as? String == "SUCCESS")

            let resumed = try EventStreamClient(baseURL: server.baseURL, token: server.adminToken, path: "/executions/\(id)/output?follow=true",
                                                headers: ["Last-Event-ID": try #require(end.id)])
            resumed.startReading()
            let rest = try await resumed.waitEnd()
            resumed.record()
            #expect(rest.map(\.event) == ["end"], "\(rest)")
        }
    }

    @Test("Reconnecting with Last-Event-ID resumes exactly: no byte twice, none lost")
    func reconnect() async throws {
        try await LiveServer.with { server in
            let job = try await server.job("lines", "bash", "for i in $(seq 1 150); do echo line $i; echo e$i >&2; sleep 0.01; done")
            let id = try await Self.run(server, job)
            let first = try EventStreamClient(baseURL: server.baseURL, token: server.adminToken, path: "/executions/\(id)/output?follow=true")
            first.startReading()
            let seen = try await first.wait { $0.filter { $0.event == "output" }.count >= 10 }
            first.close()  // the connection drops mid-way
            let last = try #require(seen.last(where: { $0.id != nil }))
            let lastID = try #require(last.id)
            let parts = lastID.split(separator: ":").compactMap { Int($0) }
            let upTo = seen.prefix { $0.id != lastID } + [last]

            let second = try EventStreamClient(baseURL: server.baseURL, token: server.adminToken, path: "/executions/\(id)/output?follow=true&offset=0:0",
                                               headers: ["Last-Event-ID": lastID])
            second.startReading()
            let rest = try await second.waitEnd()
            second.record()
            let before = outputBytes(Array(upTo))
            let after = outputBytes(rest, from: (parts[0], parts[1]))
            let kept = (try await Self.rawOutput(server, id), try await Self.rawOutput(server, id, "stderr"))
            #expect(before.stdout + after.stdout == kept.0, "Last-Event-ID wins over offset")
            #expect(before.stderr + after.stderr == kept.1,
                    "\(before.stderr.count) + \(after.stderr.count) bytes vs \(kept.1.count); resumed at \(lastID)")
            #expect(rest.last?.event == "end")
        }
    }

    @Test("Past its cap a stream says so once (capped), live and replayed; the end counts every byte written")
    func capped() async throws {
        try await LiveServer.with { server in
            let job = try await server.job("chatty", "bash", "head -c 5000 /dev/zero | tr '\\0' x; sleep 0.3; echo done >&2")
            let id = try await Self.run(server, job, #"{"limits": {"stdout": "1000"}}"#)
            let live = try EventStreamClient(baseURL: server.baseURL, token: server.adminToken, path: "/executions/\(id)/output?follow=true")
            live.startReading()
            let events = try await live.waitEnd()
            live.record()
            let replay = try EventStreamClient(baseURL: server.baseURL, token: server.adminToken, path: "/executions/\(id)/output?follow=true")
            replay.startReading()
            let replayed = try await replay.waitEnd()
            replay.record()
            for events in [events, replayed] {
                let (stdout, stderr) = outputBytes(events)
                #expect(stdout == Data(repeating: UInt8(ascii: "x"), count: 1000) && stderr == Data("done\n".utf8))
                let capped = events.filter { $0.event == "capped" }
                #expect(capped.count == 1 && capped.first?.json["stream"] as? String == "stdout", "\(capped)")
                #expect(capped.first?.json["limit_bytes"] as? Int == 1000)
                let end = events.last?.json ?? [:]
                #expect(end["stdout_bytes"] as? Int == 5000 && end["stdout_truncated"] as? Bool == true)
            }
        }
    }

    @Test("Keep-alive comments while nothing happens; a cancelled execution ends the stream")
    func keepAlive() async throws {
        try await Self.withRoomyServer({ $0.followHeartbeat = .milliseconds(150) }) { server in
            let id = try await Self.run(server, try await server.job("quiet", "bash", "sleep 50", extra: Self.roomy))
            let client = try EventStreamClient(baseURL: server.baseURL, token: server.adminToken, path: "/executions/\(id)/output?follow=true")
            client.startReading()
            let deadline = Date().addingTimeInterval(120)
            while client.comments.filter({ $0 == "keep-alive" }).count < 2, Date() < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(client.comments.filter { $0 == "keep-alive" }.count >= 2, "\(client.comments)")
            #expect(client.events.isEmpty)
            try await server.post("/executions/\(id)/cancel")
            let events = try await client.waitEnd()
            client.record()
            #expect(events.map(\.event) == ["end"] && events.last?.json["status"] as? String == "CANCELLED")
        }
    }

    @Test("Server shutdown ends a followed stream without an end event (the client reconnects later)")
    func shutdown() async throws {
        let policies = try Self.floodPolicies()
        defer { try? FileManager.default.removeItem(at: policies) }
        let server = try await LiveServer.start { $0.policies = policies.path }
        let id = try await Self.run(server, try await server.job("long", "bash", "echo started; sleep 50", extra: Self.roomy))
        let client = try EventStreamClient(baseURL: server.baseURL, token: server.adminToken, path: "/executions/\(id)/output?follow=true")
        client.startReading()
        try await client.wait { outputBytes($0).stdout == Data("started\n".utf8) }
        await server.stop()
        let events = try await client.waitEnd()
        client.record()
        #expect(events.map(\.event) == ["output"], "\(events)")
        #expect(client.comments.contains { $0.hasPrefix("the server is shutting down") }, "\(client.comments)")
    }

    @Test("Malformed follow requests are 400 naming the parameter; an unknown execution is 404")
    func refusals() async throws {
        try await LiveServer.with { server in
            let id = try await Self.run(server, try await server.job("x", "bash", "true"), #"{"wait": true}"#)
            try await server.get("/executions/\(id)/output?follow=maybe").expectProblem(400, field: "follow", "true or false")
            try await server.get("/executions/\(id)/output?follow=true&offset=12").expectProblem(400, field: "offset", "S:E")
            try await server.get("/executions/\(id)/output?follow=true&offset=-1:0").expectProblem(400, field: "offset")
            try await server.get("/executions/\(id)/output?follow=true&stream=both").expectProblem(400, field: "stream")
            try await server.get("/executions/\(id)/output?follow=true&encoding=hex").expectProblem(400, field: "encoding")
            try await server.call("GET", "/executions/\(id)/output?follow=true", headers: ["Last-Event-ID": "yesterday"])
                .expectProblem(400, field: "Last-Event-ID", "S:E")
            try await server.get("/executions/\(id)/output?offset=3:0").expectProblem(400, field: "offset", "follow=true")
            try await server.get("/executions/424242/output?follow=true").expectProblem(404, "execution 424242 not found")
            // follow=false is the raw output, as ever.
            let raw = try await server.get("/executions/\(id)/output?follow=false")
            #expect(raw.status == 200 && raw.contentType == "application/octet-stream" && raw.headers["x-confine-truncated"] == "false")
        }
    }

    @Test("A client that stops reading while the script floods 400 MB: the script runs to its end, the server's memory stays bounded",
          .enabled(if: ServerProcess.available))
    func floodWithAStuckClient() async throws {
        let policies = try Self.floodPolicies()
        defer { try? FileManager.default.removeItem(at: policies) }
        // A server process of its own: its memory is measured alone (the kernel's peak, VmHWM).
        let server = try await ServerProcess(policies: policies.path)
        defer { server.stop() }
        func job(_ name: String, _ script: String, policy: String) async throws -> Int {
            let answer = try await server.call("POST", "/jobs", json: #"{"name": \#(quote(name)), "script_type": "bash", "script_content": \#(quote(script)), "policy": \#(quote(policy))}"#)
            return try #require(answer.object["id"] as? Int, "\(answer)")
        }
        func summary(_ id: Int) async throws -> [String: Any] {
            let page = try await server.call("GET", "/executions?limit=1&cursor=\(id + 1)").object
            return try #require((page["executions"] as? [[String: Any]])?.first { $0["id"] as? Int == id })
        }
        // Warm up (a first run, first connections), then measure.
        let warm = try await job("warm", "echo warm", policy: "default")
        #expect(try await server.call("POST", "/executions/\(warm)/run?wait=true").status == 200)
        let flood = try await job("flood", "head -c 400000000 /dev/zero", policy: "flood")
        let before = server.memory("VmRSS"), anonBefore = server.memory("RssAnon")
        var anonPeak = anonBefore
        let run = try await server.call("POST", "/executions/\(flood)/run")
        let id = try #require(run.object["execution_id"] as? Int, "\(run)")
        let stuck = try EventStreamClient(baseURL: server.baseURL, token: server.adminToken, path: "/executions/\(id)/output?follow=true")
        // It never reads: its socket's buffers fill, then the server's writes to it wait.
        let deadline = Date().addingTimeInterval(300)
        var done: [String: Any] = [:]
        while Date() < deadline {
            anonPeak = max(anonPeak, server.memory("RssAnon"))
            done = try await summary(id)
            if let status = done["status"] as? String, status != "PENDING", status != "RUNNING" { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let peak = server.memory("VmHWM")
        // The script wrote everything and ended while its follower read nothing.
        #expect(done["status"] as? String == "SUCCESS" && done["stdout_bytes"] as? Int == 400_000_000, "\(done)")
        #expect(done["stdout_truncated"] as? Bool == false)
        #expect(stuck.head == nil, "the client has read nothing")
        let grew = peak - before, anonGrew = anonPeak - anonBefore
        print("flood: 400 MB captured and stored with a stuck follower; the server's resident memory peaked \(grew >> 20) MiB "
              + "above its start, its anonymous memory (sampled every 50 ms) \(anonGrew >> 20) MiB")
        // Bounded, not proportional: the capture backlog (16 MiB), a store batch, SQLite's caches
        // and the allocator's arenas — never the flood itself. Alone the whole process grows by
        // ~44 MiB; beside the whole suite (a busy disk and many threads) its anonymous memory has
        // grown by up to ~106 MiB, which is not understood yet (see the closing note of the
        // session that set this bound).
        #expect(before > 0 && anonGrew < 150_000_000, "the server's anonymous memory grew by \(anonGrew >> 20) MiB for 400 MB of output")
        #expect(grew < 200_000_000, "the server's resident memory grew by \(grew >> 20) MiB for 400 MB of output")

        // The execution is deleted while its follower still waits on the client: once the
        // client reads, the stream ends with `deleted`.
        let deleted = try await server.call("DELETE", "/jobs/\(flood)")
        #expect(deleted.status == 200, "\(deleted)")
        stuck.startReading()
        let events = try await stuck.waitEnd(seconds: 120)
        #expect(events.last?.event == "deleted" && events.last?.json["execution_id"] as? Int == id, "\(events.suffix(2))")
        let received = outputBytes(events).stdout
        #expect(received.count < 400_000_000 && received.allSatisfy { $0 == 0 })
    }
}
