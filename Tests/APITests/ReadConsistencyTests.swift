import Foundation
import Store
import Testing

/// Reads see writes: a run answered 200 is readable at once, and a finished execution's
/// answer — kept in memory by the server once it is final (`FinishedAnswers`) — is the same as
/// read from the store, is still checked against the caller's tenant, and is gone at the next
/// read once the execution is deleted, by this server or by another process on its database.
@Suite("Read consistency")
struct ReadConsistencyTests {
    @Test("A run answered 200 is read at once; its finished answer is the same at every read, in each encoding")
    func runThenRead() async throws {
        try await LiveServer.with { s in
            let job = try await s.job("read-after-run", "bash", "echo hi; echo oops >&2")
            let run = try await s.post("/executions/\(job)/run")
            #expect(run.status == 200, "\(run)")
            let id = try #require(run.object["execution_id"] as? Int)
            let first = try await s.get("/executions/\(id)")
            #expect(first.status == 200, "a client holding the id of an accepted run must read it at once: \(first)")
            #expect(first.object["id"] as? Int == id)
            _ = try await s.waitFinal(id)
            let reads = [try await s.get("/executions/\(id)"), try await s.get("/executions/\(id)"), try await s.get("/executions/\(id)")]
            for read in reads {
                #expect(read.status == 200, "\(read)")
                #expect(read.body == reads[0].body, "every read of a finished execution answers the same bytes")
                #expect(read.contentType == "application/json")
            }
            let answer = reads[0].object
            #expect(answer["status"] as? String == "SUCCESS" && answer["stdout"] as? String == "hi\n"
                    && answer["stderr"] as? String == "oops\n" && answer["stdout_encoding"] as? String == "utf-8", "\(answer)")
            #expect(answer["execution_id"] == nil, "GET /executions/{id} has no execution_id (only a waited run's answer does)")
            // The other encoding is its own answer, never the one kept for the first.
            for _ in 0..<2 {
                let base64 = try await s.get("/executions/\(id)?encoding=base64")
                #expect(base64.status == 200 && base64.object["stdout"] as? String == "aGkK"
                        && base64.object["stdout_encoding"] as? String == "base64", "\(base64)")
            }
            #expect(try await s.get("/executions/\(id)").body == reads[0].body)
            // A waited run's answer (with execution_id) is not the kept GET answer either.
            let waited = try await s.post("/executions/\(job)/run?wait=true")
            #expect(waited.status == 200 && waited.object["execution_id"] as? Int == waited.object["id"] as? Int, "\(waited)")
            let waitedID = try #require(waited.object["id"] as? Int)
            let read = try await s.get("/executions/\(waitedID)")
            #expect(read.status == 200 && read.object["execution_id"] == nil && read.object["stdout"] as? String == "hi\n", "\(read)")
        }
    }

    @Test("A finished execution read before is still another tenant's: 404 for it, 200 for its own tenant")
    func keptAnswersCheckTheTenant() async throws {
        try await LiveServer.with { s in
            let alice = try await s.token("alice", role: "submitter", extra: #", "tenant": "data""#).token
            let bob = try await s.token("bob", role: "viewer", extra: #", "tenant": "other""#).token
            let job = try await s.job("tenant-read", "bash", "echo private", as: .token(alice))
            let run = try await s.post("/executions/\(job)/run?wait=true", as: .token(alice))
            #expect(run.status == 200, "\(run)")
            let id = try #require(run.object["id"] as? Int)
            for _ in 0..<2 {
                #expect(try await s.get("/executions/\(id)", as: .token(alice)).status == 200)
                #expect(try await s.get("/executions/\(id)").status == 200, "an admin sees every tenant")
                let refused = try await s.get("/executions/\(id)", as: .token(bob))
                refused.expectProblem(404, "execution \(id) not found")
                #expect(!String(decoding: refused.body, as: UTF8.self).contains("private"))
            }
        }
    }

    @Test("A finished execution deleted with its job, or by retention in another process, is not found at the next read")
    func deletionsAreSeenAtOnce() async throws {
        try await LiveServer.with { s in
            // Deleted through the API, with its job.
            let job = try await s.job("deleted-job", "bash", "echo one")
            let run = try await s.post("/executions/\(job)/run?wait=true")
            let id = try #require(run.object["id"] as? Int)
            for _ in 0..<3 { #expect(try await s.get("/executions/\(id)").status == 200) }
            #expect(try await s.call("DELETE", "/jobs/\(job)").status == 200)
            try await s.get("/executions/\(id)").expectProblem(404, "execution \(id) not found")

            // Deleted by retention in another process (`confine` on the same database), or on
            // PostgreSQL by another node's store.
            let kept = try await s.job("pruned-job", "bash", "echo two", extra: #", "concurrency": "allow""#)
            let older = try #require(try await s.post("/executions/\(kept)/run?wait=true").object["id"] as? Int)
            let newer = try #require(try await s.post("/executions/\(kept)/run?wait=true").object["id"] as? Int)
            for _ in 0..<3 {
                #expect(try await s.get("/executions/\(older)").status == 200)
                #expect(try await s.get("/executions/\(newer)").status == 200)
            }
            let deleted: Int
            if let sqlite = s.sqlite {
                let other = try SQLiteStore(path: sqlite.path)
                deleted = try await other.prune(keepPerJob: 1, olderThan: nil)
            } else {
                deleted = try await s.store.prune(keepPerJob: 1, olderThan: nil)
            }
            #expect(deleted == 1)
            try await s.get("/executions/\(older)").expectProblem(404, "execution \(older) not found")
            let survivor = try await s.get("/executions/\(newer)")
            #expect(survivor.status == 200 && survivor.object["stdout"] as? String == "two\n", "\(survivor)")
        }
    }
}
