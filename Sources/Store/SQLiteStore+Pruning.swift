import Foundation
import GRDB

// Retention: finished executions deleted by count per job and by age, in short batches. Ad-hoc
// executions (no job) are kept by age only: they belong to no job whose newest could be counted.

extension SQLiteStore {
    /// Deletes in transactions of at most `pruneBatch` rows, each guarded on the status (a
    /// PENDING or RUNNING execution is never deleted), so the writer is never held for long.
    public func prune(keepPerJob: Int?, olderThan: Date?) async throws -> Int {
        var deleted = 0
        if let keepPerJob {
            // Finished executions only get further from their job's newest, so the ids found in
            // this snapshot stay candidates while the batches run.
            let ids = try await read { db in
                try Int64.fetchAll(db, sql: """
                    SELECT id FROM (
                      SELECT id, ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY id DESC) AS n
                      FROM execution WHERE job_id IS NOT NULL AND status NOT IN ('PENDING', 'RUNNING'))
                    WHERE n > ?
                    """, arguments: [max(0, keepPerJob)])
            }
            var start = 0
            while start < ids.count {
                let batch = Array(ids[start..<min(ids.count, start + Self.pruneBatch)])
                start += batch.count
                deleted += markDeleted(try await write { db in
                    try db.execute(sql: """
                        DELETE FROM execution
                        WHERE id IN (\(batch.map { _ in "?" }.joined(separator: ", "))) AND status NOT IN ('PENDING', 'RUNNING')
                        """, arguments: StatementArguments(batch))
                    return db.changesCount
                })
            }
        }
        if let olderThan {
            let cutoff = Millis.of(olderThan)
            while true {
                let count = markDeleted(try await write { db in
                    try db.execute(sql: """
                        DELETE FROM execution WHERE id IN (
                          SELECT id FROM execution
                          WHERE finished_at < ? AND status NOT IN ('PENDING', 'RUNNING') LIMIT ?)
                        """, arguments: [cutoff, Self.pruneBatch])
                    return db.changesCount
                })
                deleted += count
                if count < Self.pruneBatch { break }
            }
        }
        return deleted
    }

    /// Marks a committed batch that deleted executions (servers drop the finished executions
    /// they answer from memory: `finishedExecutionsVersion`); returns `count`.
    private func markDeleted(_ count: Int) -> Int {
        if count > 0 { deletionSentinel.touch() }
        return count
    }

    public func finishedExecutionsVersion() -> String? { deletionSentinel.version() }
}
