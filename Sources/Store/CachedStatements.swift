import GRDB
import GRDBSQLite

extension Database {
    /// The statement of `sql`, compiled once per connection and kept (GRDB's statement cache).
    /// The queue's and rows' statements run for every execution: compiling each time, with
    /// GRDB's authorizer called back for every column of every compile, was about a quarter
    /// of the server's CPU per trivial execution (perf, 1,000 executions end to end).
    func cached(_ sql: String) throws -> Statement {
        try cachedStatement(sql: sql)
    }

    /// The first row of the cached statement of `sql`, decoded by `decode` straight from
    /// SQLite's row (`LiveColumns`). `Row.fetchOne` copies the row first, and a copied row's
    /// columns are decoded through `DatabaseValue` (a tenth of a point read's time); a row of
    /// `Row.fetchCursor` builds a dictionary of its lowercased column names at every run of the
    /// statement (43 strings for an execution: 5 % of a `GET /executions/{id}`'s CPU).
    func first<T>(cached sql: String, arguments: StatementArguments, _ decode: (LiveColumns) throws -> T) throws -> T? {
        let statement = try cached(sql)
        try statement.setArguments(arguments)
        let sqlite = statement.sqliteStatement
        // Reset at once, so that the statement holds no read lock once the row is decoded.
        defer { sqlite3_reset(sqlite) }
        switch sqlite3_step(sqlite) {
        case SQLITE_ROW: return try decode(LiveColumns(statement: sqlite))
        case SQLITE_DONE: return nil
        case let code:
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(sqliteConnection)),
                                sql: sql, arguments: arguments)
        }
    }
}

/// Reading a row's columns by position, typed: GRDB's `Row`, or the row a statement stands on
/// (`LiveColumns`). `Records` decodes both.
protocol ColumnReading {
    /// The column's value; the column must not be NULL.
    func decoded<T: DatabaseValueConvertible & StatementColumnConvertible>(_ index: Int) -> T
    /// The column's value, nil for NULL.
    func decodedIfPresent<T: DatabaseValueConvertible & StatementColumnConvertible>(_ index: Int) -> T?
}

extension Row: ColumnReading {
    func decoded<T: DatabaseValueConvertible & StatementColumnConvertible>(_ index: Int) -> T { self[index] }
    func decodedIfPresent<T: DatabaseValueConvertible & StatementColumnConvertible>(_ index: Int) -> T? { self[index] }
}

/// The columns of the row a statement stands on after `sqlite3_step`, read straight from
/// SQLite with no `Row` built: valid until the statement steps again or is reset.
struct LiveColumns: ColumnReading {
    let statement: SQLiteStatement

    func decoded<T: DatabaseValueConvertible & StatementColumnConvertible>(_ index: Int) -> T {
        guard let value = T.fromStatement(statement, atUncheckedIndex: CInt(index)) else {
            let name = String(cString: sqlite3_column_name(statement, CInt(index)))
            preconditionFailure("column \(index) (\(name)) cannot be read as \(T.self): \(sqlite3_column_type(statement, CInt(index)) == SQLITE_NULL ? "NULL" : "another type")")
        }
        return value
    }

    func decodedIfPresent<T: DatabaseValueConvertible & StatementColumnConvertible>(_ index: Int) -> T? {
        if sqlite3_column_type(statement, CInt(index)) == SQLITE_NULL { return nil }
        return decoded(index) as T
    }
}
