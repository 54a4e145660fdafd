import Foundation
import Testing

/// Every class of bad input gets a 4xx problem+json naming what is wrong; none a 500.
@Suite("Errors as problem+json")
struct ErrorTests {
    @Test("Malformed JSON, wrong types, missing fields, unknown enum values and unknown keys")
    func badBodies() async throws {
        try await LiveServer.with { s in
            try await s.post("/jobs", #"{"name": "x", "#).expectProblem(400, "not valid JSON")
            try await s.post("/jobs", "").expectProblem(400, "empty")
            try await s.post("/jobs", "[1, 2]").expectProblem(422, "JSON object")
            try await s.post("/jobs", #"{"name": 5, "script_type": "bash", "script_content": "x"}"#)
                .expectProblem(422, field: "name", "expected a string, got a number")
            try await s.post("/jobs", #"{"name": "x", "script_type": "bash"}"#)
                .expectProblem(422, field: "script_content", "required")
            try await s.post("/jobs", #"{"name": "x", "script_type": "cobol", "script_content": "x"}"#)
                .expectProblem(422, field: "script_type", "bash, python")
            try await s.post("/jobs", #"{"name": "x", "script_type": "bash", "script_content": "x", "concurrency": "sometimes"}"#)
                .expectProblem(422, field: "concurrency", "forbid, queue, allow")
            try await s.post("/jobs", #"{"name": "x", "script_type": "bash", "script_content": "x", "polcy": "strict"}"#)
                .expectProblem(422, field: "polcy", "did you mean \"policy\"")
            try await s.post("/jobs", #"{"name": "x", "script_type": "bash", "script_content": "x", "policy": "lax"}"#)
                .expectProblem(422, field: "policy", "no policy named \"lax\"")
            try await s.post("/jobs", #"{"name": "x", "script_type": "bash", "script_content": "x", "arguments": [1]}"#)
                .expectProblem(422, field: "arguments[0]")
            try await s.post("/jobs", #"{"name": "a/b", "script_type": "bash", "script_content": "x"}"#)
                .expectProblem(422, field: "name")
            try await s.call("POST", "/jobs", body: Data("name=x".utf8), headers: ["Content-Type": "application/x-www-form-urlencoded"])
                .expectProblem(415, "application/json")
        }
    }

    @Test("Sizes: a script over max_script_size is 422, a body over max_body_size is 413 with the limit")
    func sizes() async throws {
        try await LiveServer.with({ $0.engine.maxScriptBytes = 1000; $0.maxBodyBytes = 4000 }) { s in
            let big = String(repeating: "#", count: 1500)
            try await s.post("/jobs", #"{"name": "big", "script_type": "bash", "script_content": "\#(big)"}"#)
                .expectProblem(422, field: "script_content", "1500 bytes", "1000")
            let huge = String(repeating: "#", count: 5000)
            try await s.post("/jobs", #"{"name": "huge", "script_type": "bash", "script_content": "\#(huge)"}"#)
                .expectProblem(413, "4000 bytes")
            #expect(try await s.get("/jobs").array.isEmpty, "nothing half-stored")
        }
    }

    @Test("Unknown ids and routes, wrong methods, bad path parameters, duplicate names")
    func notFoundAndConflicts() async throws {
        try await LiveServer.with { s in
            try await s.get("/jobs/77").expectProblem(404, "job 77 not found")
            try await s.get("/executions/77").expectProblem(404, "execution 77 not found")
            try await s.get("/executions/job/77").expectProblem(404, "job 77")
            try await s.get("/jobs/abc").expectProblem(400, field: "id", "positive integer")
            try await s.get("/executions/-1").expectProblem(400, field: "id")
            try await s.get("/nowhere").expectProblem(404, "no route")
            let wrong = try await s.call("PUT", "/jobs/1")
            wrong.expectProblem(405, "PUT")
            #expect(wrong.headers["allow"] == "GET, HEAD, PATCH, DELETE")
            _ = try await s.job("twin", "bash", "true")
            try await s.post("/jobs", #"{"name": "twin", "script_type": "bash", "script_content": "true"}"#).expectProblem(409, "twin")
            let other = try await s.job("other", "bash", "true")
            try await s.call("PATCH", "/jobs/\(other)", json: #"{"name": "twin"}"#).expectProblem(409, "twin")
        }
    }

    @Test("A full queue answers 503 with Retry-After, and nothing is half-stored")
    func queueFull() async throws {
        try await LiveServer.with({ $0.engine.queueLimit = 1; $0.engine.workers = 1 }) { s in
            let job = try await s.job("busy", "bash", "sleep 30", extra: #", "concurrency": "allow""#)
            let running = try #require(try await s.post("/executions/\(job)/run").object["execution_id"] as? Int)
            let deadline = Date().addingTimeInterval(10)
            while try await s.get("/executions/\(running)").object["status"] as? String != "RUNNING", Date() < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            let queued = try #require(try await s.post("/executions/\(job)/run").object["execution_id"] as? Int)
            let full = try await s.post("/executions/\(job)/run")
            full.expectProblem(503, "queue is full")
            #expect(full.headers["retry-after"] == "5")
            #expect(full.object["retry_after"] as? Int == 5)
            #expect(try await s.get("/executions/job/\(job)").array.count == 2)
            try await s.post("/executions/\(queued)/cancel")
            try await s.post("/executions/\(running)/cancel")
        }
    }
}
