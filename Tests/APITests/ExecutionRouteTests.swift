import Foundation
import Testing

/// Confine's own execution routes: run options, wait, listing with filters and a cursor,
/// cancellation, raw output and its encodings.
@Suite("Execution routes")
struct ExecutionRouteTests {
    @Test("wait=true returns the finished execution; a short wait answers 202 with it as it is")
    func waitForIt() async throws {
        try await LiveServer.with { s in
            let quick = try await s.job("quick", "bash", #"echo "args: $*"; exit 3"#, extra: #", "arguments": ["x", "y"]"#)
            let done = try await s.post("/executions/\(quick)/run?wait=true")
            #expect(done.status == 200, "\(done)")
            let e = done.object
            #expect(e["status"] as? String == "FAILED")
            #expect(e["verdict"] as? String == "exited")
            #expect(e["exit_code"] as? Int == 3)
            #expect(e["stdout"] as? String == "args: x y\n")
            #expect(e["execution_id"] as? Int == e["id"] as? Int)

            let slow = try await s.job("slow", "bash", "sleep 3")
            let pending = try await s.post("/executions/\(slow)/run", #"{"wait": true, "wait_timeout": 0.3}"#)
            #expect(pending.status == 202, "\(pending)")
            #expect(["PENDING", "RUNNING"].contains(pending.object["status"] as? String ?? ""))
            try await s.post("/executions/\(pending.object["id"] as? Int ?? 0)/cancel")
        }
    }

    @Test("Run options: stdin (text and base64), arguments, environment, tighter limits, refusals")
    func runOptions() async throws {
        try await LiveServer.with { s in
            let job = try await s.job("opts", "bash", #"cat; echo " $1 $TZ""#, extra: #", "concurrency": "allow""#)
            let text = try await s.post("/executions/\(job)/run?wait=true", #"{"stdin": "in", "arguments": ["arg"], "environment": {"TZ": "hi"}}"#)
            #expect(text.object["stdout"] as? String == "in arg hi\n", "\(text)")
            let b64 = try await s.post("/executions/\(job)/run?wait=true", #"{"stdin_base64": "\#(Data("bytes".utf8).base64EncodedString())"}"#)
            #expect((b64.object["stdout"] as? String)?.hasPrefix("bytes") == true, "\(b64)")

            let limited = try await s.job("limited", "bash", "sleep 5")
            let killed = try await s.post("/executions/\(limited)/run?wait=true", #"{"limits": {"wall_time": "300ms"}}"#)
            #expect(killed.object["status"] as? String == "TIMED_OUT", "\(killed)")
            #expect(killed.object["verdict"] as? String == "wall_timeout")

            try await s.post("/executions/\(job)/run", #"{"limits": {"memory": "100GiB"}}"#).expectProblem(422, "memory")
            try await s.post("/executions/\(job)/run", #"{"limits": {"memroy": "1MiB"}}"#).expectProblem(422, field: "limits.memroy", "did you mean")
            try await s.post("/executions/\(job)/run", #"{"environment": {"LD_PRELOAD": "/x.so"}}"#).expectProblem(422, "LD_PRELOAD")
            try await s.post("/executions/\(job)/run", #"{"priority": 1000}"#).expectProblem(422, field: "priority", "-100 to 100")
            try await s.post("/executions/\(job)/run", #"{"stdin": "a", "stdin_base64": "YQ=="}"#).expectProblem(422, "not both")
            try await s.post("/executions/\(job)/run", #"{"wiat": true}"#).expectProblem(422, field: "wiat", "did you mean \"wait\"")
            try await s.post("/executions/\(job)/run?wait=maybe").expectProblem(400, field: "wait")
            try await s.post("/executions/\(job)/run?wait=true&wait_timeout=100000").expectProblem(422, field: "wait_timeout")
        }
    }

    @Test("A max_wait below the default wait_timeout still lets every run through")
    func shortMaxWait() async throws {
        try await LiveServer.with({ $0.maxWaitSeconds = 5 }) { s in
            let job = try await s.job("short", "bash", "echo hi", extra: #", "concurrency": "allow""#)
            #expect(try await s.post("/executions/\(job)/run").status == 200)
            #expect(try await s.post("/executions/\(job)/run?wait=true").object["stdout"] as? String == "hi\n")
            try await s.post("/executions/\(job)/run?wait=true&wait_timeout=6").expectProblem(422, field: "wait_timeout", "5")
        }
    }

    @Test("Binary output: UTF-8 with a flag by default, base64 on request, raw bytes from /output")
    func binaryOutput() async throws {
        try await LiveServer.with { s in
            let job = try await s.job("binary", "bash", #"printf 'ok\377\376'; printf 'err' >&2"#)
            let e = try await s.post("/executions/\(job)/run?wait=true").object
            #expect(e["stdout_invalid_utf8"] as? Bool == true)
            #expect(e["stdout_encoding"] as? String == "utf-8")
            #expect((e["stdout"] as? String)?.hasPrefix("ok") == true)
            let id = try #require(e["id"] as? Int)
            let b64 = try await s.get("/executions/\(id)?encoding=base64").object
            #expect(b64["stdout_encoding"] as? String == "base64")
            #expect(Data(base64Encoded: b64["stdout"] as? String ?? "") == Data([0x6f, 0x6b, 0xff, 0xfe]))
            let raw = try await s.get("/executions/\(id)/output")
            #expect(raw.status == 200)
            #expect(raw.contentType == "application/octet-stream")
            #expect(raw.body == Data([0x6f, 0x6b, 0xff, 0xfe]))
            #expect(raw.headers["x-confine-truncated"] == "false")
            #expect(try await s.get("/executions/\(id)/output?stream=stderr").body == Data("err".utf8))
            try await s.get("/executions/\(id)/output?stream=both").expectProblem(400, field: "stream")
            try await s.get("/executions/\(id)?encoding=utf16").expectProblem(400, field: "encoding")
            let waited = try await s.post("/executions/\(job)/run?wait=true&encoding=base64").object
            #expect(waited["stdout_encoding"] as? String == "base64" && waited["stdout"] as? String == "b2v//g==", "\(waited)")
            try await s.post("/executions/\(job)/run?encoding=latin1").expectProblem(400, field: "encoding")
        }
    }

    @Test("Listing: filters by job, status and verdict, newest first, a cursor that neither skips nor repeats")
    func listing() async throws {
        try await LiveServer.with { s in
            let ok = try await s.job("ok", "bash", "true", extra: #", "concurrency": "allow""#)
            let bad = try await s.job("bad", "bash", "exit 1", extra: #", "concurrency": "allow""#)
            var okIDs: [Int] = []
            for _ in 0..<5 { okIDs.append(try #require(try await s.post("/executions/\(ok)/run?wait=true").object["id"] as? Int)) }
            for _ in 0..<2 { try await s.post("/executions/\(bad)/run?wait=true") }

            var seen: [Int] = []
            var cursor: String?
            repeat {
                let page = try await s.get("/executions?job_id=\(ok)&limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""))
                #expect(page.status == 200, "\(page)")
                let items = page.object["executions"] as? [[String: Any]] ?? []
                #expect(items.count <= 2)
                #expect(items.allSatisfy { $0["stdout"] == nil }, "listings leave the output out")
                seen += items.compactMap { $0["id"] as? Int }
                cursor = page.object["next_cursor"] as? String
            } while cursor != nil
            #expect(seen == okIDs.reversed())

            let failed = try await s.get("/executions?status=FAILED").object["executions"] as? [[String: Any]] ?? []
            #expect(failed.count == 2 && failed.allSatisfy { $0["job_id"] as? Int == bad })
            let both = try await s.get("/executions?status=SUCCESS,FAILED&verdict=exited&limit=1000")
            #expect((both.object["executions"] as? [[String: Any]])?.count == 7)
            let future = try await s.get("/executions?created_after=2999-01-01T00:00:00Z")
            #expect((future.object["executions"] as? [[String: Any]])?.isEmpty == true)
            try await s.get("/executions?created_after=yesterday").expectProblem(400, field: "created_after")
            try await s.get("/executions?limit=0").expectProblem(400, field: "limit")
            try await s.get("/executions?jobid=1").expectProblem(400, field: "jobid", "did you mean")
            try await s.get("/executions?verdict=oom").expectProblem(400, field: "verdict")
        }
    }

    @Test("Cancel: a running execution ends CANCELLED (within the answer unless the machine is loaded); a finished one is a conflict")
    func cancel() async throws {
        try await LiveServer.with { s in
            let job = try await s.job("forever", "bash", "sleep 60")
            let id = try #require(try await s.post("/executions/\(job)/run").object["execution_id"] as? Int)
            let deadline = Date().addingTimeInterval(10)
            while try await s.get("/executions/\(id)").object["status"] as? String != "RUNNING", Date() < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            // 200 with the final execution when it ended within the route's short wait (the
            // usual case), 202 with cancel_requested when the machine is too loaded for that.
            let answer = try await s.post("/executions/\(id)/cancel")
            #expect(answer.status == 200 || (answer.status == 202 && answer.object["cancel_requested"] as? Bool == true), "\(answer)")
            if answer.status == 200 { #expect(answer.object["status"] as? String == "CANCELLED", "\(answer)") }
            let cancelled = try await s.waitFinal(id)
            #expect(cancelled["status"] as? String == "CANCELLED")
            #expect(cancelled["verdict"] as? String == "cancelled")
            #expect((cancelled["usage"] as? [String: Any])?["wall_ms"] as? Int ?? 60_000 < 30_000, "killed, not ended by its sleep")
            let again = try await s.post("/executions/\(id)/cancel")
            again.expectProblem(409)
            #expect(again.object["detail"] as? String == "execution \(id) is already CANCELLED", "\(again)")
            let done = try await s.post("/executions/\(try await s.job("quick", "bash", "true"))/run?wait=true")
            let doneID = try #require(done.object["id"] as? Int)
            try await s.post("/executions/\(doneID)/cancel").expectProblem(409, "execution \(doneID) is already finished (SUCCESS)")
            try await s.post("/executions/424242/cancel").expectProblem(404, "424242")
        }
    }
}
