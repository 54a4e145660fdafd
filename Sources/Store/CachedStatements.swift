import GRDB

extension Database {
    /// The statement of `sql`, compiled once per connection and kept (GRDB's statement cache).
    /// The queue's and rows' statements run for every execution: compiling each time, with
    /// GRDB's authorizer called back for every column of every compile, was about a quarter
    /// of the server's CPU per trivial execution (perf, 1,000 executions end to end).
    func cached(_ sql: String) throws -> Statement {
        try cachedStatement(sql: sql)
    }

    /// The first row of the cached statement of `sql`, decoded by `decode` straight from
    /// SQLite's row. `Row.fetchOne` copies the row first, and a copied row's columns are
    /// decoded through `DatabaseValue` (a tenth of a point read's time).
    func first<T>(cached sql: String, arguments: StatementArguments, _ decode: (Row) throws -> T) throws -> T? {
        let rows = try Row.fetchCursor(cached(sql), arguments: arguments)
        return try rows.next().map(decode)
    }
}
