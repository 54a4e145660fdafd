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

    @Test("A failing run is retried: attempt 2 is retry_of the first, trigger retry, started no earlier than its not_before; the chain ends at max_attempts")
    func chainRuns() async throws {
        try await LiveServer.with { s in
            let created = try await s.post("/jobs", #"""
                {"name": "fails", "script_type": "bash", "script_content": "exit 3",
                 "retry": {"max_attempts": 2, "initial_delay": "1s", "jitter": false}}
                """#)
            let id = try #require(created.object["id"] as? Int, "\(created)")
            let first = try await s.post("/executions/\(id)/run?wait=true", "{}")
            let firstID = try #require(first.object["id"] as? Int, "\(first)")
            #expect(first.object["status"] as? String == "FAILED", "\(first)")
            var chain: [[String: Any]] = []
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                chain = try await s.get("/executions?job_id=\(id)").object["executions"] as? [[String: Any]] ?? []
                if chain.count == 2, chain.allSatisfy({ !["PENDING", "RUNNING"].contains($0["status"] as? String ?? "") }) { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let retry = try #require(chain.first { $0["id"] as? Int != firstID }, "no retry in \(chain)")
            #expect(chain.count == 2, "max_attempts 2: one retry only, \(chain)")
            #expect(retry["attempt"] as? Int == 2 && retry["retry_of"] as? Int == firstID && retry["trigger"] as? String == "retry",
                    "\(retry)")
            #expect(retry["status"] as? String == "FAILED", "\(retry)")
            func date(_ value: Any?) -> Date? {
                guard let text = value as? String else { return nil }
                let f = ISO8601DateFormatter()
                f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
                if let d = f.date(from: text) { return d }
                f.formatOptions = [.withInternetDateTime]
                return f.date(from: text)
            }
            let notBefore = try #require(date(retry["not_before"]), "\(retry)")
            let started = try #require(date(retry["started_at"]), "\(retry)")
            let ended = try #require(date(first.object["finished_at"]), "\(first)")
            #expect(notBefore.timeIntervalSince(ended) >= 0.999 && notBefore.timeIntervalSince(ended) <= 1.001,
                    "not_before is the first end plus 1 s: \(ended) → \(notBefore)")
            #expect(started >= notBefore, "the retry started before its not_before: \(started) < \(notBefore)")
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
