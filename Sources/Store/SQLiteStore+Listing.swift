import Domain
import Foundation
import GRDB

// One execution, and pages of them: the listing's filters, its cursor and the SQL it runs.

extension SQLiteStore {
    public func execution(id: Int64) async throws -> Execution? {
        try await read { db in try Self.fetchExecution(db, id: id) }
    }

    public func executions(_ query: ExecutionQuery) async throws -> ExecutionPage {
        let (sql, arguments, limit) = Self.listing(query)
        // The listings with at most one status and one verdict (a bounded set of statement
        // shapes) keep their statement compiled; lists of several are compiled each time.
        let cacheable = query.statuses.count <= 1 && query.verdicts.count <= 1
        return try await read { db in
            // A time range that holds nothing is answered from the created_at index at once,
            // instead of walking the primary key through every row looking for a match.
            if query.createdAfter != nil || query.createdBefore != nil {
                let after = query.createdAfter.map(Millis.of) ?? Int64.min
                let before = query.createdBefore.map(Millis.of) ?? Int64.max
                let any = try Int.fetchOne(db.cached("""
                    SELECT 1 FROM execution INDEXED BY execution_created WHERE created_at >= ? AND created_at < ? LIMIT 1
                    """), arguments: [after, before])
                if any == nil { return ExecutionPage(executions: [], nextCursor: nil) }
            }
            let statement = try cacheable ? db.cached(sql) : db.makeStatement(sql: sql)
            // Decoded from the cursor's row as SQLite steps (no copy of each row first).
            var page: [Execution] = []
            var more = false
            let rows = try Row.fetchCursor(statement, arguments: arguments)
            while let row = try rows.next() {
                if page.count == limit { more = true; break }
                page.append(Records.execution(row))
            }
            if query.withOutput {
                let output = try OutputPieces.all(db, page.map(\.id))
                for i in page.indices {
                    if let both = output[page[i].id] { (page[i].stdout, page[i].stderr) = both }
                }
            }
            // One row more than the page was asked for: a further page exists.
            return ExecutionPage(executions: page, nextCursor: more ? page.last?.id : nil)
        }
    }

    /// The statement `executions(_:)` runs: the query's filters, newest first, one row more
    /// than the page (capped to `ExecutionQuery.maximumLimit`) to know whether a next page exists.
    static func listing(_ query: ExecutionQuery) -> (sql: String, arguments: StatementArguments, limit: Int) {
        var conditions = Conditions()
        conditions.add("job_id = ?", query.jobID)
        conditions.add("tenant = ?", query.tenant)
        if !query.statuses.isEmpty {
            conditions.add("status IN (\(query.statuses.map { _ in "?" }.joined(separator: ", ")))",
                           arguments: StatementArguments(query.statuses.map(\.rawValue)))
        }
        if !query.verdicts.isEmpty {
            conditions.add("verdict IN (\(query.verdicts.map { _ in "?" }.joined(separator: ", ")))",
                           arguments: StatementArguments(query.verdicts.map(\.rawValue)))
        }
        conditions.add("created_at >= ?", query.createdAfter.map(Millis.of))
        conditions.add("created_at < ?", query.createdBefore.map(Millis.of))
        conditions.add("id < ?", query.before)
        conditions.add("id > ?", query.oldestFirst ? query.after : nil)
        let limit = max(1, min(ExecutionQuery.maximumLimit, query.limit))
        let order = query.oldestFirst ? "ASC" : "DESC"
        // The page size bound, not written into the SQL: one statement whatever the limit.
        return ("\(Records.executionSummarySelect)\(conditions.sql) ORDER BY id \(order) LIMIT ?", conditions.arguments + [limit + 1], limit)
    }
}
