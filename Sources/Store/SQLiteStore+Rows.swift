import Domain
import Foundation
import GRDB

// Reading rows inside a transaction: a job, an execution (with or without its output), a job's
// active execution, and the guard of every status transition.

extension SQLiteStore {
    static func fetchJob(_ db: Database, id: Int64) throws -> Job? {
        try db.first(cached: Records.jobSelect + " WHERE id = ?", arguments: [id], Records.job)
    }

    /// An execution, with its output unless `withOutput` is false.
    static func fetchExecution(_ db: Database, id: Int64, withOutput: Bool = true) throws -> Execution? {
        guard var execution = try db.first(cached: Records.executionSelect + " WHERE id = ?", arguments: [id], Records.execution)
        else { return nil }
        if withOutput, let both = try OutputPieces.all(db, [id])[id] {
            (execution.stdout, execution.stderr) = both
        }
        return execution
    }

    /// A PENDING or RUNNING execution of a job (the argument). No ORDER BY: it would make
    /// SQLite walk all the job's executions in id order instead of seeking the few active ones.
    static let activeExecutionSQL = """
        SELECT id FROM execution WHERE job_id = ? AND status IN ('PENDING', 'RUNNING') LIMIT 1
        """

    /// A PENDING or RUNNING execution of a job, if any.
    static func activeExecution(_ db: Database, jobID: Int64) throws -> Int64? {
        try Int64.fetchOne(db.cached(activeExecutionSQL), arguments: [jobID])
    }

    /// Throws the precise reason an update guarded on `status` changed nothing.
    static func requireStatus(_ db: Database, _ id: Int64, _ status: ExecutionStatus, to target: String) throws {
        guard let current = try String.fetchOne(db.cached("SELECT status FROM execution WHERE id = ?"), arguments: [id]) else {
            throw StoreError.notFound("execution \(id)")
        }
        guard let from = ExecutionStatus(rawValue: current) else {
            throw StoreError.invalid("execution \(id) has an unknown status \"\(current)\"")
        }
        if from != status { throw StoreError.invalidTransition(executionID: id, from: from, to: target) }
    }
}
