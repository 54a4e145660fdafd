import Foundation
import Store
import Testing

/// `Idempotency-Key`: a repeat answers what the first answered and does nothing else, even
/// when both arrive at once; another request with the key is 422; keys are stored.
@Suite("Idempotency keys")
struct IdempotencyTests {
    static let adHoc = #"{"script_type": "bash", "script_content": "echo once"}"#

    func post(_ s: LiveServer, _ path: String, _ json: String, key: String, as credential: LiveServer.Credential = .admin) async throws -> HTTPAnswer {
        try await s.call("POST", path, json: json, headers: ["Idempotency-Key": key], as: credential)
    }

    func executionCount(_ s: LiveServer) async throws -> Int {
        (try await s.get("/executions?limit=1000").object["executions"] as? [Any])?.count ?? -1
    }

    @Test("A repeat on each route answers the same status and ids, marked replayed, and creates nothing")
    func repeats() async throws {
        try await LiveServer.with { s in
            let first = try await post(s, "/executions", Self.adHoc, key: "adhoc-1")
            let again = try await post(s, "/executions", Self.adHoc, key: "adhoc-1")
            #expect(first.status == 201 && again.status == 201, "\(first) \(again)")
            #expect(first.object["execution_id"] as? Int == again.object["execution_id"] as? Int)
            #expect(again.headers["location"] == first.headers["location"] && again.headers["idempotent-replayed"] == "true")
            #expect(first.headers["idempotent-replayed"] == nil)

            let createJob = #"{"name": "idem", "script_type": "bash", "script_content": "echo job", "concurrency": "allow"}"#
            let job = try await post(s, "/jobs", createJob, key: "job-1")
            let jobAgain = try await post(s, "/jobs", createJob, key: "job-1")
            #expect(job.status == 200 && jobAgain.status == 200, "\(jobAgain)")
            let jobID = try #require(job.object["id"] as? Int)
            #expect(jobAgain.object["id"] as? Int == jobID && jobAgain.object["name"] as? String == "idem")

            for path in ["/executions/\(jobID)/run", "/jobs/\(jobID)/run"] {
                let run = try await post(s, path, "{}", key: "run \(path)")
                let runAgain = try await post(s, path, "{}", key: "run \(path)")
                #expect(run.status == 200 && runAgain.status == 200)
                #expect(run.object["execution_id"] as? Int == runAgain.object["execution_id"] as? Int, "\(run) \(runAgain)")
            }
            // A waited run: the first status, the same execution (final, so the same answer).
            let waited = try await post(s, "/executions?wait=true", Self.adHoc, key: "waited")
            let waitedAgain = try await post(s, "/executions?wait=true", Self.adHoc, key: "waited")
            #expect(waited.status == 200 && waitedAgain.status == 200, "\(waitedAgain)")
            #expect(waited.object["id"] as? Int == waitedAgain.object["id"] as? Int && waitedAgain.object["stdout"] as? String == "once\n")
            // 1 ad-hoc + 2 job runs + 1 waited, nothing twice.
            #expect(try await executionCount(s) == 4)
        }
    }

    @Test("A repeat after what the first created was deleted is 404 naming it and the key, and creates nothing")
    func repeatAfterDeletion() async throws {
        try await LiveServer.with { s in
            let createJob = #"{"name": "gone", "script_type": "bash", "script_content": "echo job"}"#
            let job = try await post(s, "/jobs", createJob, key: "job-gone")
            let jobID = try #require(job.object["id"] as? Int)
            #expect(try await s.call("DELETE", "/jobs/\(jobID)").status == 200)
            let again = try await post(s, "/jobs", createJob, key: "job-gone")
            again.expectProblem(404, field: "Idempotency-Key",
                                "job \(jobID), which the first request with Idempotency-Key \"job-gone\" created, no longer exists")
            #expect(try await s.get("/jobs").array.isEmpty, "the repeat created a job")
        }
    }

    @Test("Two (and eight) simultaneous POSTs with one key make one execution, and all get its id")
    func simultaneous() async throws {
        try await LiveServer.with { s in
            async let a = post(s, "/executions", Self.adHoc, key: "together")
            async let b = post(s, "/executions", Self.adHoc, key: "together")
            let (first, second) = try await (a, b)
            #expect(first.status == 201 && second.status == 201, "\(first) \(second)")
            let id = try #require(first.object["execution_id"] as? Int)
            #expect(second.object["execution_id"] as? Int == id)
            #expect([first, second].filter { $0.headers["idempotent-replayed"] == "true" }.count == 1)
            #expect(try await executionCount(s) == 1)

            let job = try await s.job("crowd", "bash", "sleep 0.2", extra: #", "concurrency": "allow""#)
            let answers = try await withThrowingTaskGroup(of: HTTPAnswer.self) { group in
                for _ in 0..<8 { group.addTask { try await post(s, "/executions/\(job)/run?wait=true", "{}", key: "crowd") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(answers.compactMap { $0.object["execution_id"] as? Int }).count == 1, "\(answers)")
            #expect(answers.allSatisfy { $0.status == 200 }, "\(answers.map(\.status))")
            #expect(try await executionCount(s) == 2)
        }
    }

    @Test("Another request with the key is 422 idempotency-key-reused; other tenants' keys are their own; a refused request keeps no key; bad keys are 400")
    func refusals() async throws {
        try await LiveServer.with { s in
            _ = try await post(s, "/executions", Self.adHoc, key: "k")
            let other = try await post(s, "/executions", #"{"script_type": "bash", "script_content": "echo other"}"#, key: "k")
            other.expectProblem(422, field: "Idempotency-Key", "another request")
            #expect(other.object["type"] as? String == "https://confine.dev/problems/idempotency-key-reused")
            // The same body on another route, or with another query, is another request.
            try await post(s, "/executions?wait=true", Self.adHoc, key: "k").expectProblem(422, field: "Idempotency-Key")

            let (_, token) = try await s.token("other-tenant", role: "submitter")
            let theirs = try await post(s, "/executions", Self.adHoc, key: "k", as: .token(token))
            #expect(theirs.status == 201 && theirs.headers["idempotent-replayed"] == nil, "\(theirs)")
            #expect(try await executionCount(s) == 2)

            // Refused: nothing done, the key not held; the corrected request goes through with it.
            try await post(s, "/executions", #"{"script_type": "cobol", "script_content": "x"}"#, key: "fixed").expectProblem(422, field: "script_type")
            let fixed = try await post(s, "/executions", Self.adHoc, key: "fixed")
            #expect(fixed.status == 201, "\(fixed)")

            try await post(s, "/executions", Self.adHoc, key: String(repeating: "k", count: 256)).expectProblem(400, field: "Idempotency-Key", "1 to 255")
            try await post(s, "/executions", Self.adHoc, key: "tab\tkey").expectProblem(400, field: "Idempotency-Key", "printable")
        }
    }

    @Test("Past idempotency_ttl a key is new again")
    func expiry() async throws {
        try await LiveServer.with({ $0.idempotencyTTL = .milliseconds(300) }) { s in
            let first = try await post(s, "/executions", Self.adHoc, key: "short")
            try await Task.sleep(for: .milliseconds(400))
            let later = try await post(s, "/executions", Self.adHoc, key: "short")
            #expect(later.status == 201 && later.headers["idempotent-replayed"] == nil)
            #expect(first.object["execution_id"] as? Int != later.object["execution_id"] as? Int)
        }
    }
}

/// Keys are rows of the store: they survive a reopening (a restart), and one of two
/// simultaneous reservations wins.
@Suite("Idempotency keys in the store")
struct IdempotencyStoreTests {
    @Test("Reserved once, answered, kept across a reopening, given up, expired")
    func lifecycle() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("confine-idem-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("db.sqlite").path
        let digest = Data([1, 2, 3]), now = Date(), old = Date(timeIntervalSinceNow: -3600)
        do {
            let store = try SQLiteStore(path: path)
            async let a = store.reserveIdempotencyKey(tenant: "t", key: "k", digest: digest, now: now, expiredBefore: old)
            async let b = store.reserveIdempotencyKey(tenant: "t", key: "k", digest: digest, now: now, expiredBefore: old)
            let results = try await [a, b]
            #expect(results.filter { $0 == nil }.count == 1, "\(results)")
            #expect(results.compactMap { $0 }.first?.answer == nil)
            try await store.completeIdempotencyKey(tenant: "t", key: "k", answer: IdempotentAnswer(status: 201, kind: "run-accepted", resourceID: 9, location: "/executions/9"))
            _ = try await store.reserveIdempotencyKey(tenant: "t", key: "gone", digest: digest, now: now, expiredBefore: old)
            try await store.releaseIdempotencyKey(tenant: "t", key: "gone")
            #expect(try await store.idempotencyRecord(tenant: "t", key: "gone") == nil)
        }
        let reopened = try SQLiteStore(path: path)
        let record = try #require(try await reopened.idempotencyRecord(tenant: "t", key: "k"))
        #expect(record.digest == digest && record.answer == IdempotentAnswer(status: 201, kind: "run-accepted", resourceID: 9, location: "/executions/9"))
        #expect(try await reopened.idempotencyRecord(tenant: "u", key: "k") == nil)
        // Expired: replaced by a new reservation; purged.
        #expect(try await reopened.reserveIdempotencyKey(tenant: "t", key: "k", digest: Data([4]), now: Date(), expiredBefore: Date().addingTimeInterval(1)) == nil)
        #expect(try await reopened.purgeIdempotencyKeys(before: Date().addingTimeInterval(10)) == 1)
    }
}
