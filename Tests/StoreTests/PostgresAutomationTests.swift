import ConfineTestSupport
import Domain
import Foundation
import PostgresNIO
@testable import Store
import Testing

/// Issue 16's features across nodes (stores) on one PostgreSQL database: a slot fired by every
/// node queues one execution, a delivery is claimed by one node at a time, and a dead node's
/// interrupted execution still gets its delivery queued.
@Suite("PostgreSQL store: automation across nodes")
struct PostgresAutomationTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("One slot fired at once by three nodes, four times each: one execution queued, the slot recorded once")
    func slotOnceAcrossNodes() async throws {
        try await TestPostgres.withDatabase { url in
            let address = try PostgresAddress(url: url)
            var nodes: [PostgresStore] = []
            for _ in 0..<3 { nodes.append(try await PostgresStore.openForTests(address)) }
            defer { nodes.forEach { $0.close() } }
            var new = NewJob(name: "cron", scriptType: .bash, scriptContent: "true", concurrency: .allow)
            new.schedule = JobSchedule(cron: "*/5 * * * *", overlap: .allow, nextRunAt: Self.t0)
            let job = try await nodes[0].createJob(new)
            var execution = makeNewExecution(job)
            execution.trigger = .schedule
            execution.scheduledFor = Self.t0
            let firing = SlotFiring(jobID: job.id, expectedNextRunAt: Self.t0, slot: Self.t0, nextRunAt: Self.t0 + 300,
                                    execution: execution, overlap: .allow)
            let results = try await withThrowingTaskGroup(of: SlotResult.self) { group in
                for node in nodes { for _ in 0..<4 { group.addTask { try await node.fireSlot(firing, queueLimit: 100) } } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let queued = results.compactMap { if case .queued(let e) = $0 { return e } else { return nil } }
            #expect(queued.count == 1)
            #expect(results.filter { $0 == .scheduleChanged }.count == 11, "the others found the next slot moved")
            #expect(queued.first?.trigger == .schedule && queued.first?.scheduledFor == Self.t0)
            #expect(try await nodes[1].executionCount() == 1)
            #expect(try await nodes[2].scheduleSlotCount() == 1)
            #expect(try await nodes[2].job(id: job.id)?.schedule?.nextRunAt == Self.t0 + 300)
        }
    }

    @Test("A dead node's interrupted execution queues its delivery; three nodes claiming at once lease it to one")
    func deliveriesAcrossNodes() async throws {
        try await TestPostgres.withDatabase { url in
            let address = try PostgresAddress(url: url)
            var nodes: [PostgresStore] = []
            for _ in 0..<3 { nodes.append(try await PostgresStore.openForTests(address)) }
            defer { nodes.forEach { $0.close() } }
            try await nodes[0].registerNode(name: "node-a", version: "test", workers: 1)
            let job = try await nodes[0].makeJob()
            var new = makeNewExecution(job)
            new.callback = WebhookCallback(url: "https://example.com/hook")
            let execution = try await nodes[0].enqueue(new, queueLimit: 10)
            _ = try #require(try await nodes[0].claim("node-a"))
            try await nodes[0].rows("UPDATE node SET last_heartbeat_at = last_heartbeat_at - 60000 WHERE name = 'node-a'")
            try await nodes[1].waitUntilServerUp(longerThan: .seconds(5))
            let ended = try await nodes[1].interruptDeadNodes(timeout: .seconds(5), reason: "node-a stopped sending heartbeats")
            #expect(ended.map(\.id) == [execution.id])
            let queued = try #require(try await nodes[1].deliveries(executionID: execution.id).first)
            #expect(queued.status == .pending && queued.url == "https://example.com/hook" && queued.event == "finished")
            let due = try #require(try await nodes[2].nextDeliveryDue())
            let claims = try await withThrowingTaskGroup(of: [WebhookDelivery].self) { group in
                for node in nodes { group.addTask { try await node.claimDueDeliveries(now: due, leaseUntil: due + 40, limit: 10) } }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(claims.map(\.id) == [queued.id], "one node holds the lease")
            #expect(try await nodes[0].nextDeliveryDue() == due + 40)
        }
    }
}
