import Domain
import Foundation
@testable import Store
import Testing

/// `finishedExecutionsVersion`: what lets a server keep finished executions' answers in memory.
/// It must change at every deletion of executions — retention, a job deleted with its
/// executions — by this store or another process's on the same file, and only then.
@Suite("Finished executions' version")
struct DeletionVersionTests {
    @Test("Changes after a job's deletion and after retention, by this store or another on the file; not after other writes")
    func changesAtEveryDeletion() async throws {
        try await withTemporaryFolder { folder in
            let path = folder.appendingPathComponent("confine.sqlite").path
            let store = try SQLiteStore(path: path)
            let start = try #require(store.finishedExecutionsVersion(), "a new database has a version")
            #expect(store.finishedExecutionsVersion() == start, "reading the version changes nothing")

            // Writes that leave every finished execution as it is keep the version.
            let job = try await store.makeJob(concurrency: .allow)
            var finished: [Int64] = []
            for _ in 0..<3 {
                let enqueued = try await store.enqueue(job)
                let running = try #require(try await store.claim())
                #expect(running.id == enqueued.id)
                _ = try await store.finish(running.id)
                finished.append(running.id)
            }
            #expect(store.finishedExecutionsVersion() == start, "enqueues, claims and finishes delete nothing")
            #expect(try await store.prune(keepPerJob: 10, olderThan: nil) == 0)
            #expect(store.finishedExecutionsVersion() == start, "a prune that deleted nothing changes nothing")

            // Retention by another process on the same file (`confine` beside a server).
            let other = try SQLiteStore(path: path)
            #expect(other.finishedExecutionsVersion() == start, "both processes read the same version")
            #expect(try await other.prune(keepPerJob: 2, olderThan: nil) == 1)
            let afterPrune = try #require(store.finishedExecutionsVersion())
            #expect(afterPrune != start, "another process's retention must be seen at the next check")
            #expect(try await store.execution(id: finished[0]) == nil)

            // A job deleted with its executions.
            try await store.deleteJob(id: job.id)
            let afterDelete = try #require(store.finishedExecutionsVersion())
            #expect(afterDelete != afterPrune)
            #expect(try await store.execution(id: finished[2]) == nil)
        }
    }
}
