import Domain
import Foundation
import GRDB

/// The SQLite implementation of `ExecutionStore` (GRDB 7 on the system's libsqlite3).
///
/// What it promises, beyond the protocol's contract:
/// - one database file in WAL mode, foreign keys on, a busy timeout; one writer and a pool of
///   readers (`DatabasePool`), so readers — the API listing executions, a client following
///   the partial output of a RUNNING one — never wait for the writer;
/// - the schema migrated at open (`Migrations`), and a file written by a newer Confine refused
///   rather than misread;
/// - every transition one write transaction guarded on the current status; every refusal and
///   failure a `StoreError` (no `DatabaseError` escapes);
/// - all work on GRDB's own dispatch queues, never blocking Swift's cooperative pool;
/// - dates as integer milliseconds since 1970, output (in pieces, `OutputPieces`) and stdin as
///   BLOBs (binary-safe);
/// - a full disk is survived: room is held back beside the file (`DiskReserve`) and released
///   at the first `SQLITE_FULL`; from then on new jobs, submissions, claims of PENDING work and
///   partial output are refused (`.diskFull`) while running executions can still be finished,
///   until the disk has room again, which ends the full state by itself.
///
/// A commit survives a crash or kill of the server (WAL with `synchronous = NORMAL`); only a
/// power cut may lose the last commits.
public final class SQLiteStore: ExecutionStore {
    /// The database file.
    public let path: String
    /// Why the database's folder was left open to others (a shared folder), or nil when it is
    /// private: the server says it once at start.
    public let folderNote: String?
    let pool: DatabasePool
    /// Room held back for finishing running executions when the disk fills.
    let reserve: DiskReserve
    /// Marks every change to the token set, for servers that keep verified tokens in memory.
    let tokenSentinel: ChangeSentinel
    /// Marks every deletion of executions, for servers that keep finished executions' answers
    /// in memory (a finished execution changes in no other way).
    let deletionSentinel: ChangeSentinel
    /// Read-only connections for bounded reads on the caller's thread (`pointRead`).
    let pointReaders: PointReaders
    /// Checkpoints the write-ahead log off the writer's path.
    let checkpointer: WALCheckpointer

    /// The most output bytes a read on the caller's thread may fetch (`pointRead`); larger
    /// slices are read on GRDB's pool.
    public static let pointReadBytes = 64 << 10

    /// The room held back by default: enough to finish a few runs with their complete output.
    public static let defaultReserveBytes = 8 << 20

    /// How many rows one pruning transaction deletes at most, so that the writer is never held
    /// long and enqueues from the API slip in between.
    static let pruneBatch = 500

    /// Opens (creating it and its folder when missing) and migrates the database at `path`,
    /// holding `reserveBytes` of its disk back for a full disk (0: none).
    public convenience init(path: String, reserveBytes: Int = SQLiteStore.defaultReserveBytes) throws {
        try self.init(path: path, migrateUpTo: nil, reserveBytes: reserveBytes)
    }

    /// Opens the database, migrating only up to `version` (nil: the latest): for migration
    /// tests, which build files at every earlier version. `busyTimeout` is how long a write
    /// waits for another process holding the database's write lock before it fails as
    /// `.unavailable`.
    public init(path: String, migrateUpTo version: String?, busyTimeout: TimeInterval = 5,
                reserveBytes: Int = SQLiteStore.defaultReserveBytes) throws {
        self.path = path
        if let version, !Migrations.versions.contains(version) {
            throw StoreError.invalid("unknown schema version \"\(version)\" (known: \(Migrations.versions.joined(separator: ", ")))")
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        folderNote = try Self.makePrivate(path: path, folder: folder)
        var configuration = Configuration()
        configuration.label = "confine-store"
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(busyTimeout)
        configuration.maximumReaderCount = 5
        // WAL with synchronous=NORMAL: a commit survives any crash or kill of the server (what
        // "nothing accepted is lost" is about); only a power cut may lose the last commits.
        // Measured here: FULL's fsync per transaction made each claim and finish ~20% slower.
        // Checkpoints: WALCheckpointer copies the log back off the writer's path; the writer
        // checkpoints by itself only past a larger log (see there).
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(WALCheckpointer.writerCheckpointPages)")
        }
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            let migrator = Migrations.migrator
            let applied = try pool.read { db in try migrator.appliedIdentifiers(db) }
            let unknown = applied.subtracting(Migrations.versions)
            if !unknown.isEmpty {
                throw StoreError.unavailable("""
                    \(path) has schema version \(unknown.sorted().joined(separator: ", ")), written by a newer Confine; \
                    this one knows up to \(Migrations.latest)
                    """)
            }
            let target = version ?? Migrations.latest
            let targetIndex = Migrations.versions.firstIndex(of: target)!
            if let beyond = Migrations.versions.enumerated().first(where: { $0.offset > targetIndex && applied.contains($0.element) }) {
                throw StoreError.invalid("\(path) is already at schema version \(beyond.element), beyond \(target)")
            }
            try migrator.migrate(pool, upTo: target)
            // One per core: the cooperative pool has as many threads.
            pointReaders = try PointReaders(path: path, count: max(2, ProcessInfo.processInfo.activeProcessorCount))
        } catch {
            throw Self.storeError(error, path: path)
        }
        self.pool = pool
        self.checkpointer = WALCheckpointer(path: path)
        self.reserve = DiskReserve(databasePath: path, bytes: reserveBytes)
        self.tokenSentinel = ChangeSentinel(databasePath: path, suffix: "-tokens")
        self.deletionSentinel = ChangeSentinel(databasePath: path, suffix: "-deletions")
        if tokenSentinel.version() == nil { tokenSentinel.touch() }
        if deletionSentinel.version() == nil { deletionSentinel.touch() }
    }

    // MARK: Helpers

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.read(body) } catch { throw Self.storeError(error, path: path) }
    }

    /// A bounded read (a row or a job, at most `pointReadBytes` of output) on the caller's
    /// thread when a point reader is idle and the database not busy (see `PointReaders`: it
    /// never waits), else on GRDB's pool as `read`. `singleStatement`: `body` runs one
    /// statement, which needs no transaction around it (see `PointReaders`).
    func pointRead<T: Sendable>(singleStatement: Bool = false, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let inline: T?
        do { inline = try pointReaders.read(transaction: !singleStatement, body) } catch { throw Self.storeError(error, path: path) }
        if let inline { return inline }
        return try await read(body)
    }

    /// `body` in one IMMEDIATE transaction on the writer. The transaction's own statements
    /// are cached like every other (GRDB's `write` compiles BEGIN and COMMIT anew each time,
    /// with its authorizer called back for each: a few percent of the server's CPU per
    /// execution). A failed body or COMMIT rolls back.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.writeWithoutTransaction { db in
                try db.cached("BEGIN IMMEDIATE").execute()
                do {
                    let result = try body(db)
                    try db.cached("COMMIT").execute()
                    self.checkpointer.committed()
                    return result
                } catch {
                    if db.isInsideTransaction { try? db.cached("ROLLBACK").execute() }
                    throw error
                }
            }
        } catch {
            let failure = Self.storeError(error, path: path)
            if case .diskFull = failure { reserve.release() }
            throw failure
        }
    }

    /// Refuses new data while the disk is full (see `DiskReserve`). Called on the store's own
    /// queues: while full, it asks the filesystem.
    func admitNewData() throws(StoreError) {
        guard reserve.admits() else { throw .diskFull(path: path) }
    }

    public func refusalOfNewData() async -> StoreError? {
        let reserve = self.reserve
        if reserve.isHeld { return nil }
        let admits = (try? await pool.read { _ in reserve.admits() }) ?? false
        return admits ? nil : .diskFull(path: path)
    }
}
