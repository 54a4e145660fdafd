import Foundation
import GRDB

// The integrity check and the online backup (`confine backup`).

extension SQLiteStore {
    /// What `PRAGMA integrity_check` finds in the database: empty when the file is sound.
    public func integrityProblems() async throws -> [String] {
        try await read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").filter { $0 != "ok" } }
    }

    /// Copies the database at `source` into the new file `target` with SQLite's online backup:
    /// a consistent snapshot taken while a server may be writing (in WAL mode, the copy's read
    /// transaction never waits for the writer). A missing `source` is refused, never created;
    /// it is only read. (Not through a read-only connection: one leaves the -wal and -shm files
    /// it had to create behind, owned by whoever ran the backup — root's would lock a server
    /// running as another user out — while the last ordinary connection removes them.)
    /// The copy is made a single self-contained file (rollback journal), then checked with
    /// `PRAGMA integrity_check`; its row counts are returned. `target` must not exist.
    /// Failures are `StoreError`s naming the file and SQLite's words.
    public static func backup(from source: String, to target: String) throws(StoreError) -> (jobs: Int, executions: Int) {
        guard FileManager.default.fileExists(atPath: source) else {
            throw .notFound("the database \(source)")
        }
        var configuration = Configuration()
        configuration.label = "confine-backup"
        configuration.busyMode = .timeout(10)
        let from: DatabaseQueue
        do { from = try DatabaseQueue(path: source, configuration: configuration) } catch {
            throw storeError(error, path: source)
        }
        defer { try? from.close() }
        do {
            let tables = try from.read { db in
                try Set(String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'"))
            }
            guard tables.isSuperset(of: ["job", "execution"]) else {
                throw StoreError.invalid("\(source) is not a Confine database (it has no job and execution tables)")
            }
        } catch {
            throw storeError(error, path: source)
        }
        var copyConfiguration = Configuration()
        copyConfiguration.label = "confine-backup-copy"
        let copy: DatabaseQueue
        do { copy = try DatabaseQueue(path: target, configuration: copyConfiguration) } catch {
            throw storeError(error, path: target)
        }
        defer { try? copy.close() }
        do {
            try from.backup(to: copy)
        } catch {
            throw storeError(error, path: source)
        }
        do {
            return try copy.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA journal_mode = DELETE")
                let problems = try String.fetchAll(db, sql: "PRAGMA integrity_check")
                guard problems == ["ok"] else {
                    throw StoreError.unavailable("the copy \(target) fails its integrity check: \(problems.prefix(5).joined(separator: "; "))")
                }
                let jobs = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job") ?? 0
                let executions = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM execution") ?? 0
                return (jobs, executions)
            }
        } catch {
            throw storeError(error, path: target)
        }
    }
}
