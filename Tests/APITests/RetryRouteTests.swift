import Foundation
import Testing

/// A job's retry policy over real HTTP: set, answered in human units, validated (422 naming
/// `retry.max_attempts`, `retry.on[0]`…), merged by PATCH, removed by null; executions carry
/// `attempt`, `retry_of` and `not_before`.
@Suite("Retries: routes")
struct RetryRouteTests {
    @Test("A retry policy is stored and answered; PATCH merges, null removes; a run is attempt 1")
    func lifecycle() async throws {
        try await LiveServer.with { s in
            let created = try await s.post("/jobs", #"""
                {"name": "flaky", "script_type": "bash", "script_content": "true",
                 "retry": {"max_attempts": 4, "on": ["FAILED", "memory_limit"], "initial_delay": "10s", "max_delay": 600,
                           "multiplier": 3, "jitter": false}}
                """#)
            #expect(created.status == 200, "\(created)")
            let id = try #require(created.object["id"] as? Int)
            let retry = try #require(created.object["retry"] as? [String: Any])
            #expect(retry["max_attempts"] as? Int == 4 && retry["on"] as? [String] == ["FAILED", "memory_limit"])
            #expect(retry["initial_delay"] as? String == "10s" && retry["max_delay"] as? String == "10m")
            #expect(retry["multiplier"] as? Double == 3 && retry["jitter"] as? Bool == false)

            let patched = try await s.call("PATCH", "/jobs/\(id)", json: #"{"retry": {"max_attempts": 2}}"#)
            let merged = try #require(patched.object["retry"] as? [String: Any], "\(patched)")
            #expect(merged["max_attempts"] as? Int == 2 && merged["initial_delay"] as? String == "10s")

            let run = try await s.post("/executions/\(id)/run?wait=true", "{}")
            #expect(run.object["attempt"] as? Int == 1 && run.object["retry_of"] is NSNull && run.object["not_before"] is NSNull, "\(run)")

            let removed = try await s.call("PATCH", "/jobs/\(id)", json: #"{"retry": null}"#)
            #expect(removed.status == 200 && removed.object["retry"] is NSNull, "\(removed)")
            let defaults = try await s.post("/jobs", #"{"name": "defaults", "script_type": "bash", "script_content": "true", "retry": {}}"#)
            let plain = try #require(defaults.object["retry"] as? [String: Any], "\(defaults)")
            #expect(plain["max_attempts"] as? Int == 3 && plain["on"] as? [String] == ["FAILED", "TIMED_OUT"])
            #expect(plain["initial_delay"] as? String == "10s" && plain["max_delay"] as? String == "10m" && plain["jitter"] as? Bool == true)
        }
    }

    @Test("Invalid retry policies are 422 naming the member and the reason")
    func validation() async throws {
        try await LiveServer.with { s in
            func create(_ retry: String) async throws -> HTTPAnswer {
                try await s.post("/jobs", #"{"name": "bad-\#(UUID().uuidString.prefix(6))", "script_type": "bash", "script_content": "true", "retry": \#(retry)}"#)
            }
            try await create(#"{"max_attempts": 1}"#).expectProblem(422, field: "retry.max_attempts", "from 2 to 100")
            try await create(#"{"max_attempts": 101}"#).expectProblem(422, field: "retry.max_attempts")
            try await create(#"{"on": ["FAILED", "SUCCESS"]}"#).expectProblem(422, field: "retry.on[1]", "never retried")
            try await create(#"{"on": ["memory_limt"]}"#).expectProblem(422, field: "retry.on[0]", "memory_limit")
            try await create(#"{"on": []}"#).expectProblem(422, field: "retry.on")
            try await create(#"{"initial_delay": "10 parsecs"}"#).expectProblem(422, field: "retry.initial_delay")
            try await create(#"{"initial_delay": -5}"#).expectProblem(422, field: "retry.initial_delay")
            try await create(#"{"max_delay": "2d"}"#).expectProblem(422, field: "retry.max_delay")
            try await create(#"{"initial_delay": "20m", "max_delay": "10m"}"#).expectProblem(422, field: "retry.initial_delay", "longer than retry.max_delay")
            try await create(#"{"multiplier": 0.5}"#).expectProblem(422, field: "retry.multiplier", "1-10")
            try await create(#"{"jitter": "yes"}"#).expectProblem(422, field: "retry.jitter")
            try await create(#"{"attempts": 3}"#).expectProblem(422, field: "retry.attempts")
        }
    }
}
