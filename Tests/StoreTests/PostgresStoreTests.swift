import ConfineTestSupport
import Domain
import Foundation
import Logging
import PostgresNIO
@testable import Store
import Testing

/// What only the PostgreSQL store has: its migrations under the advisory lock, the versions
/// shared with SQLite, several nodes (stores) on one database claiming and submitting at once.
@Suite("PostgreSQL store")
struct PostgresStoreTests {
    @Test("The schema's versions are SQLite's, in the same order")
    func versionsEqual() {
        #expect(PostgresSchema.versions == Migrations.versions)
    }

    @Test("Nodes starting at once: one migrates under the advisory lock, the others wait and find the schema ready")
    func concurrentMigration() async throws {
        try await TestPostgres.withDatabase { url in
            let address = try PostgresAddress(url: url)
            let stores = try await withThrowingTaskGroup(of: PostgresStore.self) { group in
                for _ in 0..<4 { group.addTask { try await PostgresStore.openForTests(address) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            defer { stores.forEach { $0.close() } }
            let versions = try await stores[0].rows("SELECT version FROM confine_schema ORDER BY version").map { try $0.decode(String.self) }
            #expect(versions.sorted() == Migrations.versions.sorted(), "each version recorded once")
            let job = try await stores[1].makeJob()
            #expect(try await stores[3].job(id: job.id)?.name == job.name, "every node sees the same database")
        }
    }

    @Test("A database at a newer schema version is refused, naming both versions")
    func newerSchemaRefused() async throws {
        try await TestPostgres.withDatabase { url in
            let address = try PostgresAddress(url: url)
            let store = try await PostgresStore.openForTests(address)
            try await store.rows("INSERT INTO confine_schema (version, applied_at) VALUES ('v999', 0)")
            store.close()
            do {
                _ = try await PostgresStore.openForTests(address)
                Issue.record("a newer database was opened")
            } catch let error as StoreError {
                let text = error.description
                #expect(text.contains("v999") && text.contains(Migrations.latest), "\(text)")
                #expect(text.contains("newer Confine"))
            }
        }
    }

    @Test("An unreachable server fails the open after the bounded wait, naming the address (password hidden) and the reason")
    func unreachable() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("confine-nopg-\(UUID().uuidString.prefix(8))").path
        let address = try PostgresAddress(url: "postgres://someone:s3cret@localhost:5432/nothing?host=\(folder)")
        do {
            _ = try await PostgresStore.open(address, connectTimeout: .seconds(1))
            Issue.record("opened a server that does not exist")
        } catch let error as StoreError {
            let text = error.description
            #expect(text.contains("postgres://someone:***@localhost:5432/nothing"), "\(text)")
            #expect(!text.contains("s3cret"))
            #expect(text.contains("cannot reach PostgreSQL"), "\(text)")
        }
    }

    @Test("Three nodes claiming from one queue while a fourth submits: every execution claimed exactly once (SKIP LOCKED)")
    func nodesClaimOnce() async throws {
        try await TestPostgres.withDatabase { url in
            let address = try PostgresAddress(url: url)
            let submitter = try await PostgresStore.openForTests(address)
            var nodes: [PostgresStore] = []
            for _ in 0..<3 { nodes.append(try await PostgresStore.openForTests(address)) }
            defer { ([submitter] + nodes).forEach { $0.close() } }
            let job = try await submitter.makeJob(concurrency: .allow)
            let total = 120
            let claimed = Locked<[Int64: String]>([:])
            let doubles = Locked<[Int64]>([])
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { for _ in 0..<total { _ = try await submitter.enqueue(job) } }
                for (n, node) in nodes.enumerated() {
                    for w in 0..<2 {
                        group.addTask {
                            let worker = "node\(n)-w\(w)"
                            var idle = 0
                            while idle < 50 {
                                if let e = try await node.claim(worker) {
                                    idle = 0
                                    claimed.withLock { all in
                                        if all[e.id] != nil { doubles.withLock { $0.append(e.id) } }
                                        all[e.id] = worker
                                    }
                                    try await node.finish(e.id)
                                } else {
                                    idle += 1
                                    try await Task.sleep(for: .milliseconds(20))
                                }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(doubles.withLock { $0 }.isEmpty, "claimed twice: \(doubles.withLock { $0 })")
            #expect(claimed.withLock { $0.count } == total, "every execution claimed")
            let nodesUsed = Set(claimed.withLock { $0.values.map { $0.prefix(5) } })
            #expect(nodesUsed.count > 1, "the work was shared between nodes: \(nodesUsed)")
            #expect(try await submitter.pendingCount() == 0)
        }
    }

    @Test("forbid, max_active and the queue bound are exact across nodes: 8 simultaneous submissions through 3 nodes")
    func exactAcrossNodes() async throws {
        try await TestPostgres.withDatabase { url in
            let address = try PostgresAddress(url: url)
            var nodes: [PostgresStore] = []
            for _ in 0..<3 { nodes.append(try await PostgresStore.openForTests(address)) }
            defer { nodes.forEach { $0.close() } }
            let solo = try await nodes[0].makeJob("solo", concurrency: .forbid)
            let free = try await nodes[0].makeJob("free", concurrency: .allow)
            let stores = nodes
            func race(_ make: @escaping @Sendable (Int) -> NewExecution, queueLimit: Int) async -> (ok: Int, refused: [StoreError]) {
                await withTaskGroup(of: Result<Execution, StoreError>.self) { group in
                    for i in 0..<8 {
                        group.addTask {
                            do { return .success(try await stores[i % 3].enqueue(make(i), queueLimit: queueLimit)) } catch let e as StoreError {
                                return .failure(e)
                            } catch { return .failure(.unavailable("\(error)")) }
                        }
                    }
                    var ok = 0, refused: [StoreError] = []
                    for await result in group {
                        switch result {
                        case .success: ok += 1
                        case .failure(let e): refused.append(e)
                        }
                    }
                    return (ok, refused)
                }
            }
            let forbid = await race({ _ in makeNewExecution(solo) }, queueLimit: 1000)
            #expect(forbid.ok == 1, "exactly one accepted of a forbid job")
            #expect(forbid.refused.allSatisfy { if case .conflict = $0 { return true } else { return false } }, "\(forbid.refused)")
            let quota = await race({ _ in
                var new = makeNewExecution(free)
                new.submittedBy = 42
                new.maxActive = 3
                return new
            }, queueLimit: 1000)
            #expect(quota.ok == 3, "max_active 3 holds across nodes")
            #expect(quota.refused.allSatisfy { $0 == .quotaExceeded(limit: 3) })
            let bound = await race({ _ in makeNewExecution(free) }, queueLimit: 8)
            // 1 (solo) + 3 (quota) already pending: room for 4.
            #expect(bound.ok == 4, "the queue bound holds across nodes")
            #expect(bound.refused.allSatisfy { $0 == .queueFull(limit: 8) })
            #expect(try await nodes[2].pendingCount() == 8)
            // Unique names per tenant across nodes.
            let names = await withTaskGroup(of: Bool.self) { group in
                for i in 0..<6 {
                    group.addTask { (try? await stores[i % 3].createJob(NewJob(name: "same", scriptType: .bash, scriptContent: "true"))) != nil }
                }
                return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(names == 1, "one job named same")
        }
    }

    @Test("A node silent past node_timeout: its RUNNING executions end interrupted with their partial output, the others run on")
    func deadNodeTakeover() async throws {
        try await TestPostgres.withDatabase { url in
            let address = try PostgresAddress(url: url)
            let a = try await PostgresStore.openForTests(address), b = try await PostgresStore.openForTests(address)
            defer { a.close(); b.close() }
            try await a.registerNode(name: "node-a", version: "test", workers: 2)
            try await b.registerNode(name: "node-b", version: "test", workers: 3)
            let job = try await a.makeJob(concurrency: .allow)
            _ = try await a.enqueue(job)
            _ = try await a.enqueue(job)
            let onA = try #require(try await a.claim("node-a"))
            let onB = try #require(try await b.claim("node-b"))
            try await a.appendOutput(executionID: onA.id, stdout: Data("half".utf8), stdoutOffset: 0, stderr: Data(), stderrOffset: 0,
                                     stdoutBytes: 4, stderrBytes: 0)
            #expect(try await b.interruptDeadNodes(timeout: .seconds(5), reason: "dead").isEmpty, "nobody is dead yet")
            try await a.rows("UPDATE node SET last_heartbeat_at = last_heartbeat_at - 60000 WHERE name = 'node-a'")
            // Nobody is judged before the database server has been up for node_timeout (it was
            // down, or restarted: every node's heartbeats stopped with it).
            #expect(try await b.nodes(timeout: .seconds(400 * 86400)).allSatisfy { $0.state == .alive })
            try await a.rows("UPDATE node SET last_heartbeat_at = last_heartbeat_at - 500 * 86400000::bigint WHERE name = 'node-a'")
            #expect(try await b.interruptDeadNodes(timeout: .seconds(400 * 86400), reason: "dead").isEmpty,
                    "a server up for less than node_timeout judges no node dead")
            #expect(try await b.nodes(timeout: .seconds(400 * 86400)).first?.state == .alive)
            try await a.waitUntilServerUp(longerThan: .seconds(5))
            try await b.heartbeat(node: "node-b")
            let ended = try await b.interruptDeadNodes(timeout: .seconds(5), reason: "node-a stopped sending heartbeats")
            #expect(ended.map(\.id) == [onA.id])
            let after = try #require(try await b.execution(id: onA.id))
            #expect(after.status == .failed && after.verdict == .interrupted && after.reason == "node-a stopped sending heartbeats")
            #expect(after.stdout == Data("half".utf8), "the partial output is kept")
            #expect(try await b.execution(id: onB.id)?.status == .running, "a live node's execution runs on")
            #expect(try await b.interruptDeadNodes(timeout: .seconds(5), reason: "dead").isEmpty, "taken over once")
            let nodes = try await b.nodes(timeout: .seconds(5))
            #expect(nodes.map(\.name) == ["node-a", "node-b"])
            #expect(nodes[0].state == .dead && nodes[0].running == 0 && nodes[0].workers == 2)
            #expect(nodes[1].state == .alive && nodes[1].running == 1 && nodes[1].workers == 3)
            try await b.stopNode(name: "node-b")
            #expect(try await a.nodes(timeout: .seconds(5)).last?.state == .stopped)
            // A restarted node recovers its own executions only.
            _ = try await b.recoverAtStart(node: "node-a", reason: "restart", now: Date())
            #expect(try await b.execution(id: onB.id)?.status == .running)
            let recovered = try await a.recoverAtStart(node: "node-b", reason: "restart", now: Date())
            #expect(recovered.map(\.id) == [onB.id])
        }
    }

    @Test("NOTIFY: a node that queues or cancels wakes the other nodes' listeners")
    func notifications() async throws {
        try await TestPostgres.withDatabase { url in
            let address = try PostgresAddress(url: url)
            let a = try await PostgresStore.openForTests(address), b = try await PostgresStore.openForTests(address)
            defer { a.close(); b.close() }
            let received = Locked<[StoreEvent]>([])
            let events = b.events()
            let reader = Task { for await event in events { received.withLock { $0.append(event) } } }
            defer { reader.cancel() }
            /// Waits up to 10 s for an event matching `wanted`.
            func arrives(_ wanted: @escaping (StoreEvent) -> Bool) async -> Bool {
                for _ in 0..<200 {
                    if received.withLock({ $0.contains(where: wanted) }) { return true }
                    try? await Task.sleep(for: .milliseconds(50))
                }
                return false
            }
            for _ in 0..<200 where !b.isListening { try await Task.sleep(for: .milliseconds(50)) }
            #expect(b.isListening, "the listening connection is up")
            try await Task.sleep(for: .milliseconds(50))
            received.withLock { $0.removeAll() }
            let job = try await a.makeJob(concurrency: .allow)
            let e = try await a.enqueue(job)
            #expect(await arrives { $0 == .queued }, "another node's submission wakes this one")
            _ = try await a.claim("x")
            _ = try await a.cancel(executionID: e.id, now: Date())
            #expect(await arrives { $0 == .cancelRequested(executionID: e.id) }, "another node's cancel reaches this one")
        }
    }

    @Test("shutdown() closes the pool's connections and the listening one before it returns; the store then answers unavailable")
    func shutdownClosesConnections() async throws {
        try await TestPostgres.withDatabase { url in
            let address = try PostgresAddress(url: url)
            let store = try await PostgresStore.openForTests(address)
            _ = try await store.makeJob()
            for _ in 0..<200 where !store.isListening { try await Task.sleep(for: .milliseconds(50)) }
            #expect(store.isListening)
            /// Sessions on the test's database other than the asking one, on a connection of its own.
            @Sendable func sessions() async throws -> Int64 {
                try await PostgresStore.withOwnConnection(address, timeout: .seconds(10), logger: Logger(label: "test")) {
                    try await $0.query("""
                        SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                        """, logger: Logger(label: "test")).collect().first!.decode(Int64.self)
                }
            }
            #expect(try await sessions() >= 2, "a pooled connection and the listening one")
            await store.shutdown()
            #expect(!store.isListening)
            // A backend ends just after the client's goodbye: looked at until it is gone.
            var left = try await sessions()
            for _ in 0..<100 where left > 0 {
                try await Task.sleep(for: .milliseconds(50))
                left = try await sessions()
            }
            #expect(left == 0, "every connection of the store was closed while this process lives")
            do {
                _ = try await store.job(id: 1)
                Issue.record("a closed store answered")
            } catch let error as StoreError {
                guard case .unavailable = error else { Issue.record("\(error)"); return }
            }
        }
    }

    @Test("A queue job's runs are never claimed at once by two nodes")
    func queueRuleAcrossNodes() async throws {
        try await TestPostgres.withDatabase { url in
            let address = try PostgresAddress(url: url)
            var nodes: [PostgresStore] = []
            for _ in 0..<3 { nodes.append(try await PostgresStore.openForTests(address)) }
            defer { nodes.forEach { $0.close() } }
            let job = try await nodes[0].makeJob(concurrency: .queue)
            for _ in 0..<10 { _ = try await nodes[0].enqueue(job) }
            let stores = nodes
            let overlaps = Locked(0)
            let running = Locked(0)
            let done = Locked<[Int64]>([])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 0..<3 {
                    group.addTask {
                        var idle = 0
                        while idle < 40 {
                            if let e = try await stores[n].claim("n\(n)") {
                                idle = 0
                                if running.withLock({ $0 += 1; return $0 }) > 1 { overlaps.withLock { $0 += 1 } }
                                try await Task.sleep(for: .milliseconds(5))
                                running.withLock { $0 -= 1 }
                                done.withLock { $0.append(e.id) }
                                try await stores[n].finish(e.id)
                            } else {
                                idle += 1
                                try await Task.sleep(for: .milliseconds(10))
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(overlaps.withLock { $0 } == 0)
            let order = done.withLock { $0 }
            #expect(order.count == 10 && order == order.sorted(), "in order: \(order)")
        }
    }
}

/// `database:` as a path or a URL, and the URL shown with its password hidden.
@Suite("Database location")
struct DatabaseLocationTests {
    @Test("A path is SQLite; postgres:// and postgresql:// are PostgreSQL with every part read")
    func parse() throws {
        #expect(try DatabaseLocation.parse("./var/confine.sqlite") == .sqlite(path: "./var/confine.sqlite"))
        guard case .postgres(let a) = try DatabaseLocation.parse("postgres://alice:p%40ss@db.example:6543/confine?sslmode=require") else {
            Issue.record("not postgres"); return
        }
        #expect(a.user == "alice" && a.password == "p@ss" && a.host == "db.example" && a.port == 6543 && a.database == "confine")
        #expect(a.sslMode == .require && a.socketFolder == nil)
        guard case .postgres(let s) = try DatabaseLocation.parse("postgresql://bob@localhost:5433/jobs?host=/var/run/postgresql") else {
            Issue.record("not postgres"); return
        }
        #expect(s.socketPath == "/var/run/postgresql/.s.PGSQL.5433" && s.user == "bob" && s.database == "jobs" && s.password == nil)
        guard case .postgres(let v6) = try DatabaseLocation.parse("postgres://u@[::1]/d") else { Issue.record("not postgres"); return }
        #expect(v6.host == "::1" && v6.port == 5432)
    }

    @Test("Printed, the password is ***; errors never show it")
    func redaction() throws {
        let location = try DatabaseLocation.parse("postgres://alice:hunter2@db:5432/confine")
        #expect(location.description == "postgres://alice:***@db:5432/confine")
        #expect(!"\(location)".contains("hunter2"))
        for bad in ["postgres://alice:hunter2@db:99999/confine", "postgres://alice:hunter2@db/confine?sslmode=maybe",
                    "postgres://alice:hunter2@db/", "postgres://:hunter2@db/confine", "postgres://alice:hunter2@db/c?bogus=1"] {
            do {
                _ = try DatabaseLocation.parse(bad)
                Issue.record("\(bad) was accepted")
            } catch {
                #expect(!error.description.contains("hunter2"), "\(error)")
                #expect(error.description.contains(":***@"), "\(error)")
            }
        }
        #expect(PostgresAddress.redact("x postgres://a:b@c/d?password=zz&sslmode=disable") == "x postgres://a:***@c/d?password=***&sslmode=disable")
    }

    @Test("Refusals say what is wrong")
    func refusals() {
        #expect(throws: DatabaseLocationError.self) { try DatabaseLocation.parse("mysql://u@h/d") }
        #expect(throws: DatabaseLocationError.self) { try DatabaseLocation.parse("") }
        do { _ = try DatabaseLocation.parse("postgres://u@h:0/d") } catch { #expect(error.reason.contains("port")) }
        do { _ = try DatabaseLocation.parse("postgres://u@h") } catch { #expect(error.reason.contains("database name")) }
        do { _ = try DatabaseLocation.parse("postgres://h/d") } catch { #expect(error.reason.contains("no user")) }
    }

    @Test("The state folder: the SQLite file's, or ./var for PostgreSQL")
    func stateFolder() throws {
        #expect(try DatabaseLocation.parse("/srv/confine/db.sqlite").stateFolder == "/srv/confine")
        #expect(try DatabaseLocation.parse("db.sqlite").stateFolder == ".")
        #expect(try DatabaseLocation.parse("postgres://u@h/d").stateFolder == "./var")
    }
}
