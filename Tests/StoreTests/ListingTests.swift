import Domain
import Foundation
import GRDB
@testable import Store
import Testing

/// Listing executions page by page, and the plans SQLite uses for the hot statements.
@Suite("Store listing")
struct ListingTests {
    /// What the test knows about each execution it made.
    struct Made {
        let id: Int64
        let jobID: Int64
        let status: ExecutionStatus
        let verdict: ExecutionVerdict?
        let index: Int
    }

    static let base = Date(timeIntervalSince1970: 1_750_000_000)

    /// 250 executions of two jobs, created a second apart, in every status: PENDING, RUNNING,
    /// SUCCESS, FAILED, CANCELLED in turn.
    static func fill(_ store: any ExecutionStore) async throws -> (a: Job, b: Job, made: [Made]) {
        let a = try await store.makeJob("a"), b = try await store.makeJob("b")
        var made: [Made] = []
        for i in 0..<250 {
            let job = i % 3 == 0 ? b : a
            // Ones that stay PENDING have the lowest priority so that claims take the newest.
            let e = try await store.enqueue(job, priority: i % 5 == 0 ? -1 : 0, at: base + TimeInterval(i))
            switch i % 5 {
            case 0:
                made.append(Made(id: e.id, jobID: job.id, status: .pending, verdict: nil, index: i))
            case 4:
                _ = try await store.cancel(executionID: e.id, now: Date())
                made.append(Made(id: e.id, jobID: job.id, status: .cancelled, verdict: .cancelled, index: i))
            default:
                let claimed = try #require(try await store.claim())
                #expect(claimed.id == e.id)
                if i % 5 == 2 { try await store.finish(e.id) }
                if i % 5 == 3 { try await store.finish(e.id, exit: 1) }
                let status: ExecutionStatus = [1: .running, 2: .success, 3: .failed][i % 5]!
                made.append(Made(id: e.id, jobID: job.id, status: status, verdict: i % 5 == 1 ? nil : .exited, index: i))
            }
        }
        return (a, b, made)
    }

    @Test("Paging ~250 executions with filters and a cursor: newest first, no duplicates, none missing", arguments: StoreKind.allCases)
    func paging(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let (a, b, made) = try await Self.fill(store)
            func expected(_ keep: (Made) -> Bool) -> [Int64] { made.filter(keep).map(\.id).sorted(by: >) }
            let cases: [(ExecutionQuery, [Int64])] = [
                (ExecutionQuery(limit: 40), expected { _ in true }),
                (ExecutionQuery(jobID: a.id, limit: 25), expected { $0.jobID == a.id }),
                (ExecutionQuery(jobID: b.id, statuses: [.success, .failed], limit: 7),
                 expected { $0.jobID == b.id && ($0.status == .success || $0.status == .failed) }),
                (ExecutionQuery(statuses: [.pending], limit: 9), expected { $0.status == .pending }),
                (ExecutionQuery(verdicts: [.cancelled], limit: 10), expected { $0.verdict == .cancelled }),
                (ExecutionQuery(createdAfter: Self.base + 100, createdBefore: Self.base + 200, limit: 30),
                 expected { (100..<200).contains($0.index) }),
                (ExecutionQuery(jobID: a.id, statuses: [.running], createdAfter: Self.base + 50, limit: 4),
                 expected { $0.jobID == a.id && $0.status == .running && $0.index >= 50 }),
                (ExecutionQuery(jobID: 999), []),
            ]
            for (query, ids) in cases {
                let walked = try await store.walk(query)
                #expect(walked == ids, "\(query)")
                #expect(Set(walked).count == walked.count, "no duplicates for \(query)")
            }
            #expect(made.count == 250 && made.filter { $0.jobID == a.id }.count > 100)
            // A page exactly at the end says so: no cursor when nothing follows.
            let all = try await store.executions(ExecutionQuery(limit: 250))
            #expect(all.executions.count == 250 && all.nextCursor == nil)
            let almost = try await store.executions(ExecutionQuery(limit: 249))
            #expect(almost.nextCursor == almost.executions.last?.id && almost.nextCursor != nil)
            let page = try await store.executions(ExecutionQuery(jobID: a.id, before: made[100].id, limit: 5))
            #expect(page.executions.allSatisfy { $0.id < made[100].id && $0.jobID == a.id })
        }
    }

    @Test("The page size is capped to 1000 and at least 1")
    func limitCapped() async throws {
        try await withStore { store in
            let job = try await store.makeJob()
            try await store.pool.write { db in
                for i in 0..<1005 {
                    try db.execute(sql: """
                        INSERT INTO execution (job_id, status, script_type, script_snapshot, policy_name, policy_snapshot,
                                               concurrency, created_at)
                        VALUES (?, 'SUCCESS', 'bash', 'true', 'default', '', 'allow', ?)
                        """, arguments: [job.id, i])
                }
            }
            let big = try await store.executions(ExecutionQuery(limit: 50_000))
            #expect(big.executions.count == ExecutionQuery.maximumLimit && big.nextCursor != nil)
            let rest = try await store.executions(ExecutionQuery(before: big.nextCursor, limit: 50_000))
            #expect(rest.executions.count == 5 && rest.nextCursor == nil)
            let tiny = try await store.executions(ExecutionQuery(limit: 0))
            #expect(tiny.executions.count == 1 && tiny.nextCursor != nil)
        }
    }

    @Test("EXPLAIN QUERY PLAN: by-job and by-status listings, the first page, claims and rule checks use indexes, no sort")
    func queryPlans() async throws {
        try await withStore { store in
            let (a, _, _) = try await Self.fill(store)
            func plan(_ query: ExecutionQuery) async throws -> String {
                let (sql, arguments, _) = SQLiteStore.listing(query)
                return try await store.queryPlan(sql, arguments)
            }
            let byJob = try await plan(ExecutionQuery(jobID: a.id))
            #expect(byJob.contains("USING INDEX execution_job ") && !byJob.contains("TEMP B-TREE"), "\(byJob)")
            let byJobNext = try await plan(ExecutionQuery(jobID: a.id, before: 100, limit: 20))
            #expect(byJobNext.contains("USING INDEX execution_job ") && !byJobNext.contains("TEMP B-TREE"), "\(byJobNext)")
            // The first page walks the primary key backwards and stops after the page.
            let first = try await plan(ExecutionQuery())
            #expect(first.contains("SCAN execution") && !first.contains("TEMP B-TREE"), "\(first)")
            let firstNext = try await plan(ExecutionQuery(before: 100))
            #expect(firstNext.contains("USING INTEGER PRIMARY KEY") && !firstNext.contains("TEMP B-TREE"), "\(firstNext)")
            let byStatus = try await plan(ExecutionQuery(statuses: [.failed]))
            #expect(byStatus.contains("USING INDEX execution_status") && !byStatus.contains("TEMP B-TREE"), "\(byStatus)")
            let byVerdict = try await plan(ExecutionQuery(verdicts: [.memoryLimit]))
            #expect(byVerdict.contains("USING INDEX execution_verdict") && !byVerdict.contains("TEMP B-TREE"), "\(byVerdict)")

            let claim = try await store.queryPlan(SQLiteStore.nextPendingSQL, [Int64.max])
            #expect(claim.contains("USING INDEX execution_queue") && !claim.contains("TEMP B-TREE"), "\(claim)")
            #expect(claim.contains("COVERING INDEX execution_job_status"), "the queue rule's check: \(claim)")
            let lease = try await store.queryPlan(SQLiteStore.expiredLeaseSQL, [0])
            #expect(lease.contains("execution_lease") && !lease.contains("TEMP B-TREE"), "\(lease)")
            let active = try await store.queryPlan(SQLiteStore.activeExecutionSQL, [a.id])
            #expect(active.contains("execution_job_status"), "\(active)")
        }
    }
}
