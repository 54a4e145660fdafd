import Domain
import Foundation

/// One `confine serve` process sharing the store, as its heartbeat row says.
public struct NodeRecord: Sendable, Equatable {
    /// How a node is doing, judged with the database's clock.
    public enum State: String, Sendable {
        /// Its heartbeat is younger than node_timeout.
        case alive
        /// Its heartbeat is older: its RUNNING executions were (or are being) taken over.
        case dead
        /// It stopped cleanly.
        case stopped
    }

    public var name: String
    public var state: State
    public var version: String
    public var startedAt: Date
    public var lastHeartbeatAt: Date
    public var workers: Int
    /// Its executions RUNNING now.
    public var running: Int

    public init(name: String, state: State, version: String, startedAt: Date, lastHeartbeatAt: Date, workers: Int, running: Int) {
        self.name = name
        self.state = state
        self.version = version
        self.startedAt = startedAt
        self.lastHeartbeatAt = lastHeartbeatAt
        self.workers = workers
        self.running = running
    }
}

/// What the store tells the engine of other nodes' doings, as they happen (PostgreSQL's
/// NOTIFY); SQLite has no other node and sends nothing.
public enum StoreEvent: Sendable, Equatable {
    /// An execution was queued (by any node): workers look for work.
    case queued
    /// Cancellation of a RUNNING execution was requested (on any node).
    case cancelRequested(executionID: Int64)
}

/// The nodes of one service: heartbeat rows in the store, read by every node. Times of
/// heartbeats are the database's own clock where it has one (PostgreSQL), so that nodes with
/// skewed clocks still judge each other right.
public protocol NodeStore: Sendable {
    /// Records this node as started (a restart of the same name starts it anew).
    func registerNode(name: String, version: String, workers: Int) async throws
    /// This node is alive now.
    func heartbeat(node: String) async throws
    /// This node stopped cleanly (`stopped` from now on).
    func stopNode(name: String) async throws
    /// Every node known, by name, judged against `timeout`.
    func nodes(timeout: Duration) async throws -> [NodeRecord]
    /// What a node starting recovers: the executions a crash of it left RUNNING end as
    /// `interrupted` with `reason` (on SQLite, every RUNNING one: there is no other node).
    func recoverAtStart(node: String, reason: String, now: Date) async throws -> [Execution]
    /// The RUNNING executions of nodes whose heartbeat is older than `timeout` end as
    /// `interrupted` with their partial output, and those nodes' claims are cleared. Returns
    /// the executions ended (empty on SQLite).
    func interruptDeadNodes(timeout: Duration, reason: String) async throws -> [Execution]
    /// Events from other nodes, for as long as the store is open (never ends on SQLite
    /// before the store does; empty there).
    func events() -> AsyncStream<StoreEvent>
}
