import Domain
import Foundation
import PostgresNIO

// Nodes on PostgreSQL: heartbeat rows written with the database's clock, judged against
// node_timeout by every node; a dead node's RUNNING executions end `interrupted` (with their
// partial output), taken over by whichever live node looks first (row locks, SKIP LOCKED).

extension PostgresStore {
    /// The database's clock in milliseconds since 1970, as SQL.
    static let nowMs = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

    /// How long the database server has been up, in milliseconds, as SQL.
    static let databaseUpMs = "(extract(epoch FROM clock_timestamp() - pg_postmaster_start_time()) * 1000)::bigint"

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    public func registerNode(name: String, version: String, workers: Int) async throws {
        var q = SQL()
        q.append("""
            INSERT INTO node (name, version, started_at, last_heartbeat_at, stopped_at, workers)
            VALUES (\(q.bind(name)), \(q.bind(version)), \(Self.nowMs), \(Self.nowMs), NULL, \(q.bind(Int64(workers))))
            ON CONFLICT (name) DO UPDATE SET version = excluded.version, started_at = excluded.started_at,
              last_heartbeat_at = excluded.last_heartbeat_at, stopped_at = NULL, workers = excluded.workers
            """)
        try await rows(q.query)
    }

    public func heartbeat(node: String) async throws {
        var q = SQL()
        q.append("UPDATE node SET last_heartbeat_at = \(Self.nowMs) WHERE name = \(q.bind(node)) RETURNING 1")
        if try await rows(q.query).isEmpty {
            throw StoreError.notFound("node \(node) (its row was removed; it registers again at its next start)")
        }
    }

    public func stopNode(name: String) async throws {
        var q = SQL()
        q.append("UPDATE node SET stopped_at = \(Self.nowMs), last_heartbeat_at = \(Self.nowMs) WHERE name = \(q.bind(name))")
        try await rows(q.query)
    }

    public func nodes(timeout: Duration) async throws -> [NodeRecord] {
        var q = SQL()
        q.append("""
            SELECT n.name, n.version, n.started_at, n.last_heartbeat_at, n.stopped_at, n.workers,
                   (SELECT COUNT(*) FROM execution e WHERE e.status = 'RUNNING' AND e.worker = n.name),
                   \(Self.nowMs) - n.last_heartbeat_at > \(q.bind(Self.milliseconds(timeout)))
                     AND \(Self.databaseUpMs) > \(q.bind(Self.milliseconds(timeout)))
            FROM node n ORDER BY n.name
            """)
        return try await rows(q.query).map { row in
            let (name, version, started, heartbeat, stopped, workers, running, late) =
                try row.decode((String, String, Int64, Int64, Int64?, Int64, Int64, Bool).self)
            return NodeRecord(name: name, state: stopped != nil ? .stopped : (late ? .dead : .alive), version: version,
                              startedAt: Millis.date(started), lastHeartbeatAt: Millis.date(heartbeat), workers: Int(workers),
                              running: Int(running))
        }
    }

    public func recoverAtStart(node: String, reason: String, now: Date) async throws -> [Execution] {
        // Other nodes' executions are theirs: only this node's previous run is recovered.
        try await interruptRunning(worker: node, reason: reason, now: now)
    }

    public func interruptDeadNodes(timeout: Duration, reason: String) async throws -> [Execution] {
        // Back from an outage less than node_timeout ago: the other nodes were most likely cut
        // off too and are reconnecting (their pools back off); they get node_timeout to beat
        // again before this node judges any of them.
        if let back = recoveredAt.withLock({ $0 }), ContinuousClock.now - back < timeout { return [] }
        let logger = self.logger
        return try await transaction { connection in
            // No node is judged by a heartbeat older than the database's own start: a server
            // restarted (or back from an outage) less than node_timeout ago stopped every node's
            // heartbeats, and the nodes get node_timeout to beat again before any is dead.
            var dead = SQL()
            let limit = dead.bind(Self.milliseconds(timeout))
            dead.append("""
                SELECT name FROM node WHERE stopped_at IS NULL
                  AND last_heartbeat_at < \(Self.nowMs) - \(limit)
                  AND \(Self.databaseUpMs) > \(limit)
                FOR UPDATE SKIP LOCKED
                """)
            var names = try await connection.all(dead.query, logger).map { try $0.decode(String.self) }
            // RUNNING executions of a worker that has no row at all (removed by hand) are as dead.
            var orphans = SQL()
            orphans.append("""
                SELECT DISTINCT e.worker FROM execution e WHERE e.status = 'RUNNING' AND e.worker IS NOT NULL
                  AND NOT EXISTS (SELECT 1 FROM node n WHERE n.name = e.worker)
                  AND e.started_at < \(Self.nowMs) - \(orphans.bind(Self.milliseconds(timeout)))
                  AND \(Self.databaseUpMs) > \(orphans.bind(Self.milliseconds(timeout)))
                """)
            names += try await connection.all(orphans.query, logger).map { try $0.decode(String.self) }
            guard !names.isEmpty else { return [] }
            var q = SQL()
            q.append("""
                UPDATE execution SET status = 'FAILED', verdict = 'interrupted', reason = \(q.bind(reason)),
                  finished_at = \(Self.nowMs), lease_deadline = NULL
                WHERE status = 'RUNNING' AND worker = ANY(\(q.bind(names))) RETURNING id, finished_at
                """)
            let rows = try await connection.all(q.query, logger).map { try $0.decode((Int64, Int64).self) }.sorted { $0.0 < $1.0 }
            var ended: [Execution] = []
            for (id, finishedAt) in rows {
                try await Self.queueDeliveries(connection, executionID: id, now: finishedAt, logger)
                if let execution = try await Self.fetchExecution(connection, id: id, withOutput: false, logger) { ended.append(execution) }
            }
            return ended
        }
    }
}
