import Domain
import Foundation
import GRDB

// Nodes on SQLite: the one server's heartbeat row (`GET /nodes` answers the same shape as on
// PostgreSQL); nothing to take over, no events.

extension SQLiteStore {
    public func registerNode(name: String, version: String, workers: Int) async throws {
        try await write { db in
            let now = Millis.now
            try db.execute(sql: """
                INSERT INTO node (name, version, started_at, last_heartbeat_at, stopped_at, workers) VALUES (?, ?, ?, ?, NULL, ?)
                ON CONFLICT (name) DO UPDATE SET version = excluded.version, started_at = excluded.started_at,
                  last_heartbeat_at = excluded.last_heartbeat_at, stopped_at = NULL, workers = excluded.workers
                """, arguments: [name, version, now, now, workers])
        }
    }

    public func heartbeat(node: String) async throws {
        try await write { db in
            try db.execute(sql: "UPDATE node SET last_heartbeat_at = ? WHERE name = ?", arguments: [Millis.now, node])
        }
    }

    public func stopNode(name: String) async throws {
        try await write { db in
            let now = Millis.now
            try db.execute(sql: "UPDATE node SET stopped_at = ?, last_heartbeat_at = ? WHERE name = ?", arguments: [now, now, name])
        }
    }

    public func nodes(timeout: Duration) async throws -> [NodeRecord] {
        let now = Millis.now
        let timeoutMs = Int64(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        return try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT n.name, n.version, n.started_at, n.last_heartbeat_at, n.stopped_at, n.workers,
                       (SELECT COUNT(*) FROM execution e WHERE e.status = 'RUNNING' AND e.worker = n.name)
                FROM node n ORDER BY n.name
                """).map { row in
                let stopped: Int64? = row[4], heartbeat: Int64 = row[3]
                let state: NodeRecord.State = stopped != nil ? .stopped : (now - heartbeat > timeoutMs ? .dead : .alive)
                return NodeRecord(name: row[0], state: state, version: row[1], startedAt: Millis.date(row[2]),
                                  lastHeartbeatAt: Millis.date(heartbeat), workers: row[5], running: row[6])
            }
        }
    }

    public func recoverAtStart(node: String, reason: String, now: Date) async throws -> [Execution] {
        // One server per file: whatever was RUNNING belonged to a run of it that ended.
        try await interruptRunning(worker: nil, reason: reason, now: now)
    }

    public func interruptDeadNodes(timeout: Duration, reason: String) async throws -> [Execution] { [] }

    /// No other node: an empty stream, finished at once.
    public func events() -> AsyncStream<StoreEvent> {
        AsyncStream { $0.finish() }
    }
}
