import Foundation
import GRDB
import Synchronization

/// Copies the write-ahead log back into the database file mostly off the writer's path.
///
/// SQLite checkpoints by itself on the committing connection whenever the log passes 1,000
/// pages: that commit then copies the pages back and waits for two fsyncs, and every write
/// queued behind it — a worker's finish and next claim, a submission — waits too (measured: 3 %
/// of the machine in I/O wait, about a tenth fewer executions a second end to end). Here the
/// copying is done every `commitsPerCheckpoint` commits on a connection and a dispatch queue of
/// its own, PASSIVE (it never waits for, nor holds up, readers or the writer). The writer
/// still checkpoints by itself past `writerCheckpointPages` (set on every connection of the
/// store), rarely and with little left to copy: only a checkpoint that finds the log fully
/// copied when the writer begins lets the log start over, which a checkpoint racing a busy
/// writer never does, so without it the log would grow without bound under load. What a
/// commit guarantees is unchanged: in WAL mode with `synchronous = NORMAL` a commit is in the
/// log, which survives a crash of the server, whenever it is copied back.
final class WALCheckpointer: Sendable {
    /// Commits between two background checkpoints (a finish writes 10–20 pages).
    static let commitsPerCheckpoint = 25
    /// The log's size, in pages, past which the writer checkpoints by itself (SQLite's
    /// `wal_autocheckpoint`, 1,000 by default): a log of up to ~16 MiB.
    static let writerCheckpointPages = 4000

    private let path: String
    private let connection = Mutex<DatabaseQueue?>(nil)
    private let commits = Atomic<Int>(0)
    private let inFlight = Atomic<Bool>(false)

    init(path: String) {
        self.path = path
    }

    /// Counts a commit of the writer; every `commitsPerCheckpoint`, starts a checkpoint unless
    /// one is still going. Never waits.
    func committed() {
        guard commits.wrappingAdd(1, ordering: .relaxed).newValue % Self.commitsPerCheckpoint == 0,
              !inFlight.exchange(true, ordering: .acquiringAndReleasing) else { return }
        guard let queue = checkpointConnection() else {
            inFlight.store(false, ordering: .releasing)
            return
        }
        queue.asyncWriteWithoutTransaction { [self] db in
            // A failure (a full disk, the file gone) leaves the log as it is: the writer's own
            // checkpoint, or the last connection's close, copies it back.
            _ = try? db.checkpoint(.passive)
            inFlight.store(false, ordering: .releasing)
        }
    }

    /// The checkpointing connection, opened at the first checkpoint (most short-lived stores,
    /// as in tests, never need one); nil when it cannot be opened (the writer's checkpoints
    /// then do all of it, as SQLite's default would).
    private func checkpointConnection() -> DatabaseQueue? {
        connection.withLock { queue in
            if let queue { return queue }
            var configuration = Configuration()
            configuration.label = "confine-checkpoint"
            queue = try? DatabaseQueue(path: path, configuration: configuration)
            return queue
        }
    }
}
