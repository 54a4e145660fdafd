import Foundation
import Store
import Testing

/// `POST /executions`: a script run in one call, no job stored (`job_id` null), with the
/// lifecycle, output, follow, cancel, quotas, tenant isolation and refusals of any run.
@Suite("Ad-hoc runs")
struct AdHocRunTests {
    @Test("201 with Location and PENDING; the execution runs, has job_id null and the token's tenant")
    func createdAndRun() async throws {
        try await LiveServer.with { s in
            let (_, token) = try await s.token("adhoc-user", role: "submitter", extra: #", "tenant": "lab""#)
            let answer = try await s.post("/executions", #"{"script_type": "python", "script_content": "import sys; print(sys.stdin.read().upper(), sys.argv[1:])", "stdin": "abc", "arguments": ["x"]}"#,
                                          as: .token(token))
            #expect(answer.status == 201, "\(answer)")
            #expect(Set(answer.object.keys) == ["execution_id", "status"])
            #expect(answer.object["status"] as? String == "PENDING")
            let id = try #require(answer.object["execution_id"] as? Int)
            #expect(answer.headers["location"] == "/executions/\(id)")
            let done = try await s.waitFinal(id, as: .token(token))
            #expect(done["status"] as? String == "SUCCESS", "\(done)")
            #expect(done["stdout"] as? String == "ABC ['x']\n")
            #expect(done["job_id"] is NSNull, "\(done)")
            #expect(done["tenant"] as? String == "lab")
            #expect(done["script_type"] as? String == "python" && done["policy"] as? String == "default")
            // Raw output, and the listing filtered by status, know it too.
            #expect(try await s.get("/executions/\(id)/output", as: .token(token)).text == "ABC ['x']\n")
            let listed = try await s.get("/executions?status=SUCCESS", as: .token(token)).object["executions"] as? [[String: Any]]
            #expect(listed?.map { $0["id"] as? Int } == [id])
        }
    }

    @Test("wait: 200 with the finished execution (exit code, verdict), 202 when wait_timeout passes first; cancel works")
    func waitAndCancel() async throws {
        try await LiveServer.with { s in
            let done = try await s.post("/executions?wait=true", #"{"script_type": "bash", "script_content": "echo out; echo err >&2; exit 4"}"#)
            #expect(done.status == 200, "\(done)")
            #expect(done.object["execution_id"] as? Int == done.object["id"] as? Int)
            #expect(done.object["status"] as? String == "FAILED" && done.object["verdict"] as? String == "exited")
            #expect(done.object["exit_code"] as? Int == 4 && done.object["stdout"] as? String == "out\n" && done.object["stderr"] as? String == "err\n")
            #expect(done.object["job_id"] is NSNull)

            let limited = try await s.post("/executions", #"{"script_type": "bash", "script_content": "sleep 5", "limits": {"wall_time": "300ms"}, "wait": true}"#)
            #expect(limited.object["status"] as? String == "TIMED_OUT" && limited.object["verdict"] as? String == "wall_timeout", "\(limited)")

            let slow = try await s.post("/executions", #"{"script_type": "bash", "script_content": "sleep 30", "wait": true, "wait_timeout": 0.3}"#)
            #expect(slow.status == 202, "\(slow)")
            let id = try #require(slow.object["id"] as? Int)
            let cancelled = try await s.post("/executions/\(id)/cancel")
            #expect([200, 202].contains(cancelled.status), "\(cancelled)")
            let final = try await s.waitFinal(id)
            #expect(final["status"] as? String == "CANCELLED" && final["verdict"] as? String == "cancelled", "\(final)")
        }
    }

    @Test("Refusals name the field: type, script, policy, limits, environment, options, unknown keys, body size, role")
    func refusals() async throws {
        try await LiveServer.with({ $0.maxBodyBytes = 64 << 10 }) { s in
            try await s.post("/executions", #"{"script_content": "x"}"#).expectProblem(422, field: "script_type", "required")
            try await s.post("/executions", #"{"script_type": "python"}"#).expectProblem(422, field: "script_content", "required")
            try await s.post("/executions", #"{"script_type": "pyhton", "script_content": "x"}"#)
                .expectProblem(422, field: "script_type", "did you mean \"python\"")
            try await s.post("/executions", #"{"script_type": "bash", "script_content": "x", "policy": "nope"}"#)
                .expectProblem(422, field: "policy", "no policy named \"nope\"")
            try await s.post("/executions", #"{"script_type": "bash", "script_content": "x", "limits": {"memory": "100GiB"}}"#)
                .expectProblem(422, field: "limits", "memory")
            try await s.post("/executions", #"{"script_type": "bash", "script_content": "x", "limits": {"memroy": "1MiB"}}"#)
                .expectProblem(422, field: "limits.memroy", "did you mean")
            try await s.post("/executions", #"{"script_type": "bash", "script_content": "x", "environment": {"LD_PRELOAD": "/x.so"}}"#)
                .expectProblem(422, field: "environment.LD_PRELOAD", "not allowed")
            try await s.post("/executions", #"{"script_type": "bash", "script_content": "x", "stdin": "a", "stdin_base64": "YQ=="}"#)
                .expectProblem(422, field: "stdin_base64", "not both")
            try await s.post("/executions", #"{"script_type": "bash", "script_content": "x", "job_id": 3}"#)
                .expectProblem(422, field: "job_id", "unknown field")
            try await s.post("/executions", #"{"script_type": "bash", "script_content": "x", "priority": 1000}"#)
                .expectProblem(422, field: "priority", "-100 to 100")
            try await s.post("/executions").expectProblem(400, "empty")
            try await s.post("/executions", "[1]").expectProblem(422, "JSON object")
            let big = String(repeating: "x", count: 70_000)
            try await s.post("/executions", #"{"script_type": "bash", "script_content": "\#(big)"}"#).expectProblem(413, "max_body_size")
            let (_, viewer) = try await s.token("adhoc-viewer", role: "viewer")
            #expect(try await s.post("/executions", #"{"script_type": "bash", "script_content": "true"}"#, as: .token(viewer)).status == 403)
            #expect(try await s.post("/executions", #"{"script_type": "bash", "script_content": "true"}"#, as: .anonymous).status == 401)
        }
        try await LiveServer.with({ $0.engine.maxScriptBytes = 100 }) { s in
            let long = String(repeating: "#", count: 200)
            try await s.post("/executions", #"{"script_type": "bash", "script_content": "\#(long)"}"#)
                .expectProblem(422, field: "script_content", "max_script_size")
        }
    }

    @Test("Another tenant's ad-hoc execution is not found; quotas (max_active, policies, max_priority) and the queue bound hold")
    func isolationAndQuotas() async throws {
        try await LiveServer.with { s in
            let (_, alice) = try await s.token("alice", role: "submitter", extra: #", "max_active": 1, "policies": ["default"]"#)
            let (_, bob) = try await s.token("bob", role: "submitter")
            let first = try await s.post("/executions", #"{"script_type": "bash", "script_content": "sleep 30"}"#, as: .token(alice))
            let id = try #require(first.object["execution_id"] as? Int, "\(first)")
            for path in ["/executions/\(id)", "/executions/\(id)/output"] {
                try await s.get(path, as: .token(bob)).expectProblem(404, "not found")
            }
            try await s.post("/executions/\(id)/cancel", as: .token(bob)).expectProblem(404, "not found")
            #expect((try await s.get("/executions", as: .token(bob)).object["executions"] as? [Any])?.isEmpty == true)
            // One pending or running at most: the second is over max_active.
            let second = try await s.post("/executions", #"{"script_type": "bash", "script_content": "true"}"#, as: .token(alice))
            second.expectProblem(429, "max_active")
            #expect(second.object["quota"] as? String == "max_active")
            try await s.post("/executions/\(id)/cancel", as: .token(alice))
            _ = try await s.waitFinal(id, as: .token(alice))
            let strict = try await s.post("/executions", #"{"script_type": "bash", "script_content": "true", "policy": "strict"}"#, as: .token(alice))
            strict.expectProblem(429, field: "policy", "strict")
            try await s.post("/executions", #"{"script_type": "bash", "script_content": "true", "priority": 50}"#, as: .token(alice))
                .expectProblem(429, field: "priority", "ceiling")
        }
        // A flood is bounded like runs of jobs: past queue_limit, 503 with Retry-After.
        try await LiveServer.with({ $0.engine.queueLimit = 1; $0.engine.workers = 1 }) { s in
            var statuses: [Int] = []
            var refusal: HTTPAnswer?
            for _ in 0..<4 {
                let answer = try await s.post("/executions", #"{"script_type": "bash", "script_content": "sleep 30"}"#)
                statuses.append(answer.status)
                if answer.status == 503 { refusal = answer }
            }
            #expect(statuses.contains(503), "\(statuses)")
            let full = try #require(refusal)
            full.expectProblem(503, "queue is full")
            #expect(full.headers["retry-after"] != nil)
        }
    }

    @Test("Retention: ad-hoc executions go by age, never by keep_per_job (they belong to no job)")
    func retention() async throws {
        try await LiveServer.with { s in
            let job = try await s.job("kept", "bash", "true", extra: #", "concurrency": "allow""#)
            var jobRuns: [Int] = [], adHoc: [Int] = []
            for _ in 0..<2 {
                jobRuns.append(try #require(try await s.post("/executions/\(job)/run?wait=true").object["id"] as? Int))
                adHoc.append(try #require(try await s.post("/executions?wait=true", #"{"script_type": "bash", "script_content": "true"}"#).object["id"] as? Int))
            }
            #expect(try await s.store.prune(keepPerJob: 1, olderThan: nil) == 1)
            try await s.get("/executions/\(jobRuns[0])").expectProblem(404)
            for id in adHoc { #expect(try await s.get("/executions/\(id)").status == 200) }
            #expect(try await s.store.prune(keepPerJob: nil, olderThan: Date().addingTimeInterval(60)) == 3)
            for id in adHoc { try await s.get("/executions/\(id)").expectProblem(404) }
        }
    }
}
