import Foundation
import GRDB
import Synchronization

/// Read-only connections for the API's bounded reads — one execution's row with at most
/// `SQLiteStore.pointReadBytes` of its output, one job — run on the caller's own thread.
///
/// GRDB's asynchronous read hops three times per read (to the pool's semaphore queue, to the
/// reader's queue, back to the caller's executor), each a dispatch and a thread woken, and
/// wraps the read in BEGIN and COMMIT compiled anew each time: that machinery was over half of
/// the server's CPU per `GET /executions/{id}` (perf, wrk -t2 -c16). A point read in SQLite's
/// page cache takes a few microseconds of CPU and, in WAL mode, never waits for the writer.
///
/// Nothing here waits: a connection is taken only when one is idle (else `read` answers nil
/// and the caller uses GRDB's pool), and the connections have no busy timeout, so a read that
/// would have to wait for a lock (a recovery, another process holding the file exclusively)
/// fails at once with `SQLITE_BUSY` and is answered nil too. So a cooperative thread is never
/// parked here, and at most `count` threads are inside SQLite at once.
///
/// Each read is one deferred transaction (BEGIN and COMMIT cached), so the statements of one
/// read see one snapshot, and a read begun after a write committed sees that write. A read of
/// one statement (`transaction: false`) needs none: SQLite runs a lone statement in a
/// transaction of its own, with the same guarantees, and BEGIN and COMMIT were two of its
/// three statements.
final class PointReaders: Sendable {
    private let idle: Mutex<[DatabaseQueue]>

    /// Opens `count` read-only connections to the (already migrated) database at `path`.
    init(path: String, count: Int) throws {
        var configuration = Configuration()
        configuration.label = "confine-point-read"
        configuration.readonly = true
        configuration.busyMode = .immediateError
        var queues: [DatabaseQueue] = []
        for _ in 0..<max(0, count) {
            queues.append(try DatabaseQueue(path: path, configuration: configuration))
        }
        idle = Mutex(queues)
    }

    /// `body` in a read transaction on an idle connection, on this thread; nil when no
    /// connection is idle or the database is busy (then nothing of `body` took effect).
    /// Without `transaction`, `body` must run a single statement.
    func read<T>(transaction: Bool = true, _ body: (Database) throws -> T) throws -> T? {
        guard let queue = idle.withLock({ $0.popLast() }) else { return nil }
        defer { idle.withLock { $0.append(queue) } }
        return try queue.inDatabase { db -> T? in
            do {
                guard transaction else { return try body(db) }
                try db.cached("BEGIN DEFERRED TRANSACTION").execute()
                defer { try? db.cached("COMMIT TRANSACTION").execute() }
                return try body(db)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
                return nil
            }
        }
    }
}
