import Foundation
import GRDB

// Output while an execution runs (appended in pieces) and read back by slices (followers).

extension SQLiteStore {
    public func appendOutput(executionID: Int64, stdout: Data, stdoutOffset: Int64, stderr: Data, stderrOffset: Int64,
                             stdoutBytes: Int64, stderrBytes: Int64) async throws {
        try await write { db in
            try self.admitNewData()
            try db.cached("UPDATE execution SET stdout_bytes = ?, stderr_bytes = ? WHERE id = ? AND status = 'RUNNING'").execute(arguments: [stdoutBytes, stderrBytes, executionID])
            if db.changesCount == 0 { try Self.requireStatus(db, executionID, .running, to: "given more output") }
            try OutputPieces.append(db, executionID, .stdout, stdout, at: stdoutOffset)
            try OutputPieces.append(db, executionID, .stderr, stderr, at: stderrOffset)
        }
    }

    /// The execution as answered and how many bytes of each stream are stored, in one statement.
    static let rowAndEndsSQL = "SELECT " + Records.executionSummaryColumns + ", " + OutputPieces.endColumn(.stdout) + ", "
        + OutputPieces.endColumn(.stderr) + " FROM execution WHERE id = ?1"

    public func output(executionID: Int64, stdoutFrom: Int64, stderrFrom: Int64, limit: Int) async throws -> OutputSlice? {
        // A row with a bounded slice of output is read on the caller's thread (`pointRead`).
        let body: @Sendable (Database) throws -> OutputSlice? = { db in
            let ends = Records.ExecutionColumn.allCases.count
            guard let (execution, storedStdout, storedStderr) = try db.first(cached: Self.rowAndEndsSQL, arguments: [executionID], { row in
                (Records.execution(row), (row.decodedIfPresent(ends) as Int64?) ?? 0, (row.decodedIfPresent(ends + 1) as Int64?) ?? 0)
            }) else { return nil }
            let limit = max(0, limit)
            // All of both streams (a finished run's small output, what GET /executions/{id}
            // asks for): every piece in one statement.
            if stdoutFrom == 0, stderrFrom == 0, storedStdout + storedStderr <= Int64(limit), storedStdout + storedStderr > 0 {
                let both = try OutputPieces.all(db, [executionID])[executionID] ?? (Data(), Data())
                return OutputSlice(execution: execution, stdout: both.stdout, stderr: both.stderr,
                                   storedStdout: storedStdout, storedStderr: storedStderr)
            }
            // Both streams get half of the limit; what one does not need goes to the other.
            let stdoutLeft = max(0, storedStdout - stdoutFrom), stderrLeft = max(0, storedStderr - stderrFrom)
            let stderrShare = Int(min(stderrLeft, Int64(limit / 2)))
            let stdoutTake = Int(min(stdoutLeft, Int64(limit - stderrShare)))
            let stderrTake = Int(min(stderrLeft, Int64(limit - stdoutTake)))
            return OutputSlice(
                execution: execution,
                stdout: try OutputPieces.read(db, executionID, .stdout, from: stdoutFrom, limit: stdoutTake),
                stderr: try OutputPieces.read(db, executionID, .stderr, from: stderrFrom, limit: stderrTake),
                storedStdout: storedStdout, storedStderr: storedStderr)
        }
        return try await limit <= Self.pointReadBytes ? pointRead(body) : read(body)
    }
}
