import Foundation
import Testing

/// `POST /executions/batch`: up to 100 runs, each validated and queued on its own, answered
/// 207 with one result per run in order.
@Suite("Batches")
struct BatchTests {
    static func results(_ answer: HTTPAnswer) -> [[String: Any]] { answer.object["results"] as? [[String: Any]] ?? [] }

    @Test("Job runs and ad-hoc runs are queued and run; a bad item gets its problem in its place, the others go on")
    func mixed() async throws {
        try await LiveServer.with { s in
            let job = try await s.job("batched", "bash", #"echo "job $1""#, extra: #", "concurrency": "allow""#)
            let answer = try await s.post("/executions/batch", #"""
                {"runs": [
                  {"job_id": \#(job), "arguments": ["one"]},
                  {"script_type": "python", "script_content": "print(6 * 7)"},
                  {"script_type": "bash", "script_content": "true", "limits": {"memroy": "1MiB"}},
                  {"job_id": 999999},
                  {"script_content": "true"},
                  {"job_id": \#(job), "script_content": "echo sneaky"},
                  {"script_type": "bash", "script_content": "true", "wait": true},
                  {"job_id": \#(job), "files": [{"path": "in.txt", "content": "x"}]}
                ]}
                """#)
            #expect(answer.status == 207, "\(answer)")
            let results = Self.results(answer)
            #expect(results.count == 8, "\(answer)")
            guard results.count == 8 else { return }
            for i in [0, 1, 7] {
                #expect(results[i]["status"] as? String == "PENDING" && results[i]["execution_id"] is Int, "\(i): \(results[i])")
                #expect(results[i]["problem"] == nil)
            }
            let expected: [(Int, Int, String)] = [(2, 422, "runs[2].limits.memroy"), (3, 404, "runs[3].job_id"), (4, 422, "runs[4].script_type"),
                                                  (5, 422, "runs[5].script_content"), (6, 422, "runs[6].wait")]
            for (i, status, field) in expected {
                let problem = results[i]["problem"] as? [String: Any]
                #expect(problem?["status"] as? Int == status && problem?["field"] as? String == field, "\(i): \(results[i])")
                #expect((problem?["type"] as? String)?.hasPrefix("https://confine.dev/problems/") == true)
                #expect(results[i]["execution_id"] == nil)
            }
            let first = try await s.waitFinal(try #require(results[0]["execution_id"] as? Int))
            #expect(first["stdout"] as? String == "job one\n" && first["job_id"] as? Int == job, "\(first)")
            let second = try await s.waitFinal(try #require(results[1]["execution_id"] as? Int))
            #expect(second["stdout"] as? String == "42\n" && second["job_id"] is NSNull, "\(second)")
        }
    }

    @Test("Quotas and rules per item: max_active counts each item, forbid refuses the second run of a job, another tenant's job is not found")
    func quotas() async throws {
        try await LiveServer.with { s in
            let (_, token) = try await s.token("batcher", role: "submitter", extra: #", "max_active": 2"#)
            let sleepy = #"{"script_type": "bash", "script_content": "sleep 30"}"#
            let answer = try await s.call("POST", "/executions/batch", json: #"{"runs": [\#(sleepy), \#(sleepy), \#(sleepy)]}"#, as: .token(token))
            let results = Self.results(answer)
            #expect(results.prefix(2).allSatisfy { $0["execution_id"] is Int }, "\(answer)")
            let refused = results.last?["problem"] as? [String: Any]
            #expect(refused?["status"] as? Int == 429 && refused?["quota"] as? String == "max_active", "\(answer)")
            for result in results.prefix(2) { try await s.post("/executions/\(result["execution_id"] as? Int ?? 0)/cancel", as: .token(token)) }

            let forbid = try await s.job("single", "bash", "sleep 30")
            let twice = Self.results(try await s.post("/executions/batch", #"{"runs": [{"job_id": \#(forbid)}, {"job_id": \#(forbid)}]}"#))
            #expect(twice.first?["execution_id"] is Int)
            #expect((twice.last?["problem"] as? [String: Any])?["status"] as? Int == 409, "\(twice)")
            try await s.post("/executions/\(twice.first?["execution_id"] as? Int ?? 0)/cancel")

            let (_, stranger) = try await s.token("stranger", role: "submitter")
            let hidden = Self.results(try await s.call("POST", "/executions/batch", json: #"{"runs": [{"job_id": \#(forbid)}]}"#, as: .token(stranger)))
            #expect((hidden.first?["problem"] as? [String: Any])?["status"] as? Int == 404, "\(hidden)")
        }
    }

    @Test("The whole batch is refused for a malformed body, runs missing, empty or over 100, a body over max_body_size, a weaker role")
    func refusals() async throws {
        try await LiveServer.with({ $0.maxBodyBytes = 32 << 10 }) { s in
            try await s.post("/executions/batch", "{}").expectProblem(422, field: "runs", "required")
            try await s.post("/executions/batch", #"{"runs": []}"#).expectProblem(422, field: "runs", "1 to 100")
            try await s.post("/executions/batch", #"{"runs": {}}"#).expectProblem(422, field: "runs", "array")
            let many = Array(repeating: #"{"script_type": "bash", "script_content": "true"}"#, count: 101).joined(separator: ",")
            try await s.post("/executions/batch", #"{"runs": [\#(many)]}"#).expectProblem(422, field: "runs", "101")
            try await s.post("/executions/batch", #"{"runs": [], "wait": true}"#).expectProblem(422, field: "wait", "unknown field")
            try await s.post("/executions/batch", "{").expectProblem(400)
            let big = String(repeating: "x", count: 40_000)
            try await s.post("/executions/batch", #"{"runs": [{"script_type": "bash", "script_content": "\#(big)"}]}"#).expectProblem(413)
            let (_, viewer) = try await s.token("batch-viewer", role: "viewer")
            #expect(try await s.call("POST", "/executions/batch", json: #"{"runs": [{"script_type": "bash", "script_content": "true"}]}"#, as: .token(viewer)).status == 403)
            try await s.call("POST", "/executions/batch", json: #"{"runs": [{"script_type": "bash", "script_content": "true"}]}"#,
                             headers: ["Idempotency-Key": "k"]).expectProblem(400, field: "Idempotency-Key", "one by one")
            // GET of the path is not an execution id.
            let get = try await s.get("/executions/batch")
            #expect([400, 404, 405].contains(get.status) && get.contentType.hasPrefix("application/problem+json"), "\(get)")
        }
    }
}
