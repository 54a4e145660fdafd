/// One node of the service (`Node`, `GET /nodes`): a `confine serve` process sharing the
/// database, as its heartbeat row says.
public struct WireNode: Codable, Sendable, Equatable {
    public var name: String
    /// `alive`, `dead` (no heartbeat for longer than node_timeout) or `stopped` (cleanly).
    public var state: String
    public var version: String
    public var started_at: String
    public var last_heartbeat_at: String
    public var workers: Int
    /// Its executions RUNNING now.
    public var running: Int

    public init(name: String, state: String, version: String, started_at: String, last_heartbeat_at: String, workers: Int,
                running: Int) {
        self.name = name
        self.state = state
        self.version = version
        self.started_at = started_at
        self.last_heartbeat_at = last_heartbeat_at
        self.workers = workers
        self.running = running
    }
}
