import Domain
import Foundation
import PostgresNIO

// Reads on PostgreSQL: output while an execution runs (appended in pieces, read by slices),
// one execution, pages of them, collected files.

extension PostgresStore {
    public func appendOutput(executionID: Int64, stdout: Data, stdoutOffset: Int64, stderr: Data, stderrOffset: Int64,
                             stdoutBytes: Int64, stderrBytes: Int64) async throws {
        let logger = self.logger
        try await transaction { connection in
            var q = SQL()
            q.append("""
                UPDATE execution SET stdout_bytes = \(q.bind(stdoutBytes)), stderr_bytes = \(q.bind(stderrBytes))
                WHERE id = \(q.bind(executionID)) AND status = 'RUNNING' RETURNING id
                """)
            if try await connection.changed(q.query, logger) == 0 {
                try await Self.requireStatus(connection, executionID, .running, to: "given more output", logger)
            }
            try await PostgresOutputPieces.append(connection, executionID, .stdout, stdout, at: stdoutOffset, logger)
            try await PostgresOutputPieces.append(connection, executionID, .stderr, stderr, at: stderrOffset, logger)
        }
    }

    public func output(executionID: Int64, stdoutFrom: Int64, stderrFrom: Int64, limit: Int) async throws -> OutputSlice? {
        // One statement (one snapshot, one round trip): the row, both streams' stored ends, and
        // each stream's bytes from its offset, `limit` at most each; shared out below.
        let limit = max(0, limit)
        /// A stream's range: from its offset, `limit` bytes (saturating).
        func range(_ from: Int64) -> (Int64, Int64) {
            let start = max(0, from)
            let (end, overflow) = start.addingReportingOverflow(Int64(limit))
            return (start, overflow ? Int64.max : end)
        }
        var binds = PostgresBindings()
        binds.append(executionID)
        for from in [stdoutFrom, stderrFrom] {
            let (start, end) = range(from)
            binds.append(start)
            binds.append(end)
        }
        guard let row = try await rows(PostgresStatements.OutputSlice.self, binds).first else { return nil }
        let r = row.makeRandomAccess()
        let ends = Records.ExecutionColumn.allCases.count
        let execution = try PostgresRecords.execution(r)
        let storedStdout = try r[ends].decode(Int64.self), storedStderr = try r[ends + 1].decode(Int64.self)
        let stdoutBytes = try r[ends + 2].decode(Data.self), stderrBytes = try r[ends + 3].decode(Data.self)
        // As SQLite's: stderr gets up to half when both have more, stdout the rest.
        let stderrShare = min(stderrBytes.count, limit / 2)
        let stdoutTake = min(stdoutBytes.count, limit - stderrShare)
        let stderrTake = min(stderrBytes.count, limit - stdoutTake)
        return OutputSlice(execution: execution, stdout: stdoutBytes.prefix(stdoutTake), stderr: stderrBytes.prefix(stderrTake),
                           storedStdout: storedStdout, storedStderr: storedStderr)
    }

    public func execution(id: Int64) async throws -> Execution? {
        // One statement: the row and both streams whole.
        var binds = PostgresBindings()
        binds.append(id)
        guard let row = try await rows(PostgresStatements.ExecutionWhole.self, binds).first else { return nil }
        let r = row.makeRandomAccess()
        let output = Records.ExecutionColumn.allCases.count
        var execution = try PostgresRecords.execution(r)
        execution.stdout = try r[output].decode(Data.self)
        execution.stderr = try r[output + 1].decode(Data.self)
        return execution
    }

    public func executions(_ query: ExecutionQuery) async throws -> ExecutionPage {
        let logger = self.logger
        var q = SQL(Records.executionSummarySelect)
        var clauses: [String] = []
        if let jobID = query.jobID { clauses.append("job_id = \(q.bind(jobID))") }
        if let tenant = query.tenant { clauses.append("tenant = \(q.bind(tenant))") }
        if !query.statuses.isEmpty { clauses.append("status = ANY(\(q.bind(query.statuses.map(\.rawValue))))") }
        if !query.verdicts.isEmpty { clauses.append("verdict = ANY(\(q.bind(query.verdicts.map(\.rawValue))))") }
        if let after = query.createdAfter { clauses.append("created_at >= \(q.bind(Millis.of(after)))") }
        if let before = query.createdBefore { clauses.append("created_at < \(q.bind(Millis.of(before)))") }
        if let before = query.before { clauses.append("id < \(q.bind(before))") }
        if query.oldestFirst, let after = query.after { clauses.append("id > \(q.bind(after))") }
        if !clauses.isEmpty { q.append(" WHERE " + clauses.joined(separator: " AND ")) }
        let limit = max(1, min(ExecutionQuery.maximumLimit, query.limit))
        q.append(" ORDER BY id \(query.oldestFirst ? "ASC" : "DESC") LIMIT \(q.bind(Int64(limit + 1)))")
        let statement = q.query
        return try await transaction { connection in
            let rows = try await connection.all(statement, logger)
            var page = try rows.prefix(limit).map(PostgresRecords.execution)
            if query.withOutput {
                let output = try await PostgresOutputPieces.all(connection, page.map(\.id), logger)
                for i in page.indices {
                    if let both = output[page[i].id] { (page[i].stdout, page[i].stderr) = both }
                }
            }
            return ExecutionPage(executions: page, nextCursor: rows.count > limit ? page.last?.id : nil)
        }
    }

    // MARK: Output files

    static func storeArtifacts(_ connection: PostgresConnection, _ executionID: Int64, _ outcome: ExecutionOutcome,
                               _ logger: Logger) async throws {
        var clear = SQL("DELETE FROM execution_artifact WHERE execution_id = ")
        clear.append(clear.bind(executionID))
        try await connection.query(clear.query, logger: logger)
        for collected in outcome.artifacts {
            var q = SQL()
            q.append("""
                INSERT INTO execution_artifact (execution_id, path, size, sha256, data)
                VALUES (\(q.bind(executionID)), \(q.bind(collected.artifact.path)), \(q.bind(collected.artifact.size)),
                        \(q.bind(collected.artifact.sha256)), \(q.bind(collected.content)))
                """)
            try await connection.query(q.query, logger: logger)
        }
        var skipped = SQL()
        skipped.append("""
            UPDATE execution SET artifacts_skipped = \(skipped.bind(JSONText.encode(outcome.skippedArtifacts)))
            WHERE id = \(skipped.bind(executionID))
            """)
        try await connection.query(skipped.query, logger: logger)
    }

    public func artifacts(executionID: Int64) async throws -> (execution: Execution, files: [Artifact], skipped: [SkippedArtifact])? {
        let logger = self.logger
        return try await transaction { connection in
            guard let execution = try await Self.fetchExecution(connection, id: executionID, withOutput: false, logger) else { return nil }
            var q = SQL("SELECT path, size, sha256 FROM execution_artifact WHERE execution_id = ")
            q.append("\(q.bind(executionID)) ORDER BY path")
            let files = try await connection.all(q.query, logger).map { row in
                let (path, size, sha) = try row.decode((String, Int64, String).self)
                return Artifact(path: path, size: size, sha256: sha)
            }
            var s = SQL("SELECT artifacts_skipped FROM execution WHERE id = ")
            s.append(s.bind(executionID))
            let skipped = try await connection.first(s.query, logger)?.decode(String.self)
            return (execution, files, JSONText.decode([SkippedArtifact].self, skipped, empty: []))
        }
    }

    public func artifact(executionID: Int64, path: String) async throws -> (execution: Execution, artifact: Artifact, content: Data)? {
        let logger = self.logger
        return try await transaction { connection in
            guard let execution = try await Self.fetchExecution(connection, id: executionID, withOutput: false, logger) else { return nil }
            var q = SQL()
            q.append("""
                SELECT path, size, sha256, data FROM execution_artifact
                WHERE execution_id = \(q.bind(executionID)) AND path = \(q.bind(path))
                """)
            guard let row = try await connection.first(q.query, logger) else { return nil }
            let (p, size, sha, data) = try row.decode((String, Int64, String, Data).self)
            return (execution, Artifact(path: p, size: size, sha256: sha), data)
        }
    }
}
