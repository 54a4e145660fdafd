/// A whole store: executions and access, in one database. What `confine serve` opens — SQLite
/// or PostgreSQL — and hands to the engine (as `ExecutionStore`) and the API (as
/// `AccessStore`), neither of which learns which one it has.
public protocol ConfineStore: ExecutionStore, AccessStore {
    /// Lets go of the database's connections once nothing will use the store again (what
    /// `confine serve` does last when it stops, on the error path too).
    func shutdown() async
}

extension SQLiteStore: ConfineStore {
    /// Nothing to close ahead: SQLite's file closes with the process.
    public func shutdown() async {}
}

extension PostgresStore: ConfineStore {}

/// The schema versions this build knows (the same names on SQLite and PostgreSQL).
public enum StoreSchema {
    /// The newest version, which a store opened by this build ends at.
    public static var latest: String { Migrations.latest }
}
