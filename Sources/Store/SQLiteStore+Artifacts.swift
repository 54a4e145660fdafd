import Domain
import Foundation
import GRDB

// Output files: collected from an execution's working directory, stored when it finishes (in
// the same transaction), listed and read one at a time; deleted with their execution.

extension SQLiteStore {
    static func storeArtifacts(_ db: Database, _ executionID: Int64, _ outcome: ExecutionOutcome) throws {
        try db.cached("DELETE FROM execution_artifact WHERE execution_id = ?").execute(arguments: [executionID])
        for collected in outcome.artifacts {
            try db.cached("INSERT INTO execution_artifact (execution_id, path, size, sha256, data) VALUES (?, ?, ?, ?, ?)")
                .execute(arguments: [executionID, collected.artifact.path, collected.artifact.size, collected.artifact.sha256,
                                     collected.content])
        }
        try db.cached("UPDATE execution SET artifacts_skipped = ? WHERE id = ?")
            .execute(arguments: [JSONText.encode(outcome.skippedArtifacts), executionID])
    }

    public func artifacts(executionID: Int64) async throws -> (execution: Execution, files: [Artifact], skipped: [SkippedArtifact])? {
        try await read { db in
            guard let execution = try Self.fetchExecution(db, id: executionID, withOutput: false) else { return nil }
            let files = try Row.fetchAll(db.cached("""
                SELECT path, size, sha256 FROM execution_artifact WHERE execution_id = ? ORDER BY path
                """), arguments: [executionID]).map { Artifact(path: $0[0], size: $0[1], sha256: $0[2]) }
            let skipped = try String.fetchOne(db.cached("SELECT artifacts_skipped FROM execution WHERE id = ?"), arguments: [executionID])
            return (execution, files, JSONText.decode([SkippedArtifact].self, skipped, empty: []))
        }
    }

    public func artifact(executionID: Int64, path: String) async throws -> (execution: Execution, artifact: Artifact, content: Data)? {
        try await read { db in
            guard let execution = try Self.fetchExecution(db, id: executionID, withOutput: false),
                  let row = try Row.fetchOne(db.cached("""
                      SELECT path, size, sha256, data FROM execution_artifact WHERE execution_id = ? AND path = ?
                      """), arguments: [executionID, path]) else { return nil }
            return (execution, Artifact(path: row[0], size: row[1], sha256: row[2]), row[3])
        }
    }
}
