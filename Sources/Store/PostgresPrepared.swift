import PostgresNIO

/// The text of a statement run often enough to be prepared once per connection: its SQL is
/// the same at every call (only the bound values change).
protocol PostgresStatementText {
    static var sql: String { get }
}

/// A statement of fixed text, prepared on each pooled connection the first time it runs there
/// (PostgresNIO keeps the prepared names per connection), then only bound and executed: no
/// parse, plan or row description per call. Its rows are returned as they come.
struct PreparedQuery<Text: PostgresStatementText>: PostgresPreparedStatement {
    typealias Row = PostgresRow
    static var sql: String { Text.sql }
    /// The statement's name on the server: one per text (the type's name).
    static var name: String { "confine." + String(describing: Text.self) }

    var bindings: PostgresBindings

    func makeBindings() throws -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}

extension PostgresStore {
    /// The rows of a prepared statement on a pooled connection.
    func rows<Text: PostgresStatementText>(_ text: Text.Type, _ bindings: PostgresBindings) async throws -> [PostgresRow] {
        let logger = self.logger
        return try await withConnection { connection in
            var rows: [PostgresRow] = []
            for try await row in try await connection.execute(PreparedQuery<Text>(bindings: bindings), logger: logger) {
                rows.append(row)
            }
            return rows
        }
    }
}

/// The prepared statements of the hot paths: a claim, a token's lookup at every request, the
/// point reads of `GET /executions/{id}` and `GET /jobs/{id}`.
enum PostgresStatements {
    /// `PostgresStore.claimStatement`: $1 now, $2 the worker, $3 the lease's end.
    enum Claim: PostgresStatementText {
        static let sql = PostgresStore.claimStatement
    }

    /// A token by its digest ($1).
    enum TokenByDigest: PostgresStatementText {
        static let sql = Records.tokenSelect + " WHERE digest = $1"
    }

    /// A job by its id ($1).
    enum JobByID: PostgresStatementText {
        static let sql = Records.jobSelect + " WHERE id = $1"
    }

    /// An execution as answered to clients, its streams' stored ends, and each stream's bytes
    /// in a range: $1 the id, $2–$3 stdout's range, $4–$5 stderr's.
    enum OutputSlice: PostgresStatementText {
        static let sql = "SELECT " + Records.executionSummaryColumns + ", " + PostgresOutputPieces.endColumn(.stdout) + ", "
            + PostgresOutputPieces.endColumn(.stderr) + ", " + PostgresOutputPieces.rangeColumn(.stdout, from: "$2", to: "$3")
            + ", " + PostgresOutputPieces.rangeColumn(.stderr, from: "$4", to: "$5") + " FROM execution WHERE id = $1"
    }

    /// An execution with all its columns and both streams whole ($1 the id).
    enum ExecutionWhole: PostgresStatementText {
        static let sql = "SELECT " + Records.executionColumns + ", "
            + PostgresOutputPieces.rangeColumn(.stdout, from: "0", to: "9223372036854775807") + ", "
            + PostgresOutputPieces.rangeColumn(.stderr, from: "0", to: "9223372036854775807") + " FROM execution WHERE id = $1"
    }
}
