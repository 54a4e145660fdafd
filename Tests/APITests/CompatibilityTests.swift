import Foundation
import Testing

/// The earlier automation platform's contract, exactly as its README shows it: clients written
/// for it must work unchanged against Confine.
@Suite("Compatibility with the earlier platform")
struct CompatibilityTests {
    @Test("README walk-through: create a job, run it, read the execution — keys, values and status codes")
    func readmeWalkThrough() async throws {
        try await LiveServer.with { s in
            let created = try await s.post("/jobs", #"{"name": "hello-world", "script_type": "python", "script_content": "print('Hello from execution')"}"#)
            #expect(created.status == 200, "\(created)")
            #expect(created.contentType.hasPrefix("application/json"))
            let job = created.object
            #expect(job["name"] as? String == "hello-world")
            #expect(job["script_type"] as? String == "python")
            #expect(job["script_content"] as? String == "print('Hello from execution')")
            let jobID = try #require(job["id"] as? Int)

            let run = try await s.post("/executions/\(jobID)/run")
            #expect(run.status == 200, "\(run)")
            let runBody = run.object
            #expect(runBody.count == 2, "exactly {execution_id, status}: \(run)")
            #expect(runBody["status"] as? String == "PENDING")
            let executionID = try #require(runBody["execution_id"] as? Int)

            let e = try await s.waitFinal(executionID)
            for key in ["id", "job_id", "status", "stdout", "stderr", "exit_code", "created_at", "finished_at"] {
                #expect(e.keys.contains(key), "missing \(key)")
            }
            #expect(e["id"] as? Int == executionID)
            #expect(e["job_id"] as? Int == jobID)
            #expect(e["status"] as? String == "SUCCESS")
            #expect(e["stdout"] as? String == "Hello from execution\n")
            #expect(e["stderr"] as? String == "")
            #expect(e["exit_code"] as? Int == 0)
            // Dates Python's datetime.fromisoformat reads on every version: ms and +00:00.
            let pattern = #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00$"#
            for key in ["created_at", "finished_at"] {
                let text = try #require(e[key] as? String)
                #expect(text.range(of: pattern, options: .regularExpression) != nil, "\(key) = \(text)")
            }
        }
    }

    @Test("Every job route of the earlier platform, with and without a trailing slash")
    func jobRoutes() async throws {
        try await LiveServer.with { s in
            let a = try await s.job("alpha", "bash", "echo a")
            let b = try await s.job("beta", "python", "print('b')")
            for path in ["/jobs", "/jobs/"] {
                let list = try await s.get(path)
                #expect(list.status == 200)
                #expect(list.array.compactMap { $0["id"] as? Int } == [a, b])
            }
            #expect(try await s.get("/jobs/\(a)").object["name"] as? String == "alpha")
            #expect(try await s.get("/jobs/\(a)/").object["name"] as? String == "alpha")
            #expect(try await s.get("/jobs/by_name/beta").object["id"] as? Int == b)
            #expect(try await s.get("/jobs/by_script_type/python").array.compactMap { $0["id"] as? Int } == [b])
            #expect(try await s.get("/jobs/by_script_type/ruby").array.isEmpty, "an unknown type lists nothing, as before")

            let patched = try await s.call("PATCH", "/jobs/\(a)", json: #"{"name": "alpha2", "script_content": "echo patched"}"#)
            #expect(patched.status == 200, "\(patched)")
            #expect(patched.object["name"] as? String == "alpha2")
            #expect(patched.object["script_content"] as? String == "echo patched")
            #expect(patched.object["script_type"] as? String == "bash", "fields not given keep their value")

            let deleted = try await s.call("DELETE", "/jobs/\(a)")
            #expect(deleted.status == 200)
            #expect(deleted.object["id"] as? Int == a, "DELETE answers the deleted job, as before")
            try await s.get("/jobs/\(a)").expectProblem(404, "job \(a) not found")
            try await s.get("/jobs/by_name/nobody").expectProblem(404, "nobody")
            let spaced = try await s.job("nightly report", "bash", "true")
            #expect(try await s.get("/jobs/by_name/nightly%20report").object["id"] as? Int == spaced, "names are percent-decoded")
        }
    }

    @Test("Run: 404 for an unknown job, 409 while one is pending or running, executions by job, /health")
    func runRules() async throws {
        try await LiveServer.with { s in
            try await s.post("/executions/9999/run").expectProblem(404, "job 9999 not found")
            let job = try await s.job("sleepy", "bash", "sleep 2")
            let first = try await s.post("/executions/\(job)/run")
            #expect(first.status == 200)
            let conflict = try await s.post("/executions/\(job)/run")
            conflict.expectProblem(409, "pending or running")
            #expect((conflict.object["detail"] as? String)?.contains("\(first.object["execution_id"] as? Int ?? -1)") == true,
                    "the detail names the execution in the way: \(conflict)")
            let id = try #require(first.object["execution_id"] as? Int)
            let listed = try await s.get("/executions/job/\(job)")
            #expect(listed.status == 200)
            #expect(listed.array.compactMap { $0["id"] as? Int } == [id])
            try await s.post("/executions/\(id)/cancel")
            // The earlier platform's newer versions ran a job at /jobs/{id}/run: same answer.
            let other = try await s.job("alias", "bash", "echo via alias")
            let aliased = try await s.post("/jobs/\(other)/run")
            #expect(aliased.status == 200 && aliased.object["status"] as? String == "PENDING", "\(aliased)")
            let viaAlias = try await s.waitFinal(try #require(aliased.object["execution_id"] as? Int))
            #expect(viaAlias["stdout"] as? String == "via alias\n")
            try await s.post("/jobs/9999/run").expectProblem(404, "job 9999 not found")
            let health = try await s.get("/health")
            #expect(health.status == 200)
            #expect(health.text == #"{"status":"ok"}"#)
        }
    }
}
