import Foundation
import GRDB

// Every failure of the database as a `StoreError` with words an operator can act on.

extension SQLiteStore {
    /// Every failure as a StoreError with words an operator can act on.
    static func storeError(_ error: any Error, path: String) -> StoreError {
        if let e = error as? StoreError { return e }
        if error is CancellationError { return .unavailable("the request was cancelled before \(path) answered") }
        guard let e = error as? DatabaseError else { return .unavailable("\(path): \(error)") }
        let detail = e.message.map { " (\($0))" } ?? ""
        switch e.resultCode {
        case .SQLITE_FULL:
            return .diskFull(path: path)
        case .SQLITE_BUSY:
            return .unavailable("the database \(path) is busy: another process holds its write lock\(detail)")
        case .SQLITE_LOCKED:
            return .unavailable("the database \(path) is locked by another connection\(detail)")
        case .SQLITE_READONLY:
            return .unavailable("the database \(path) is read-only\(detail)")
        case .SQLITE_CANTOPEN:
            return .unavailable("cannot open the database \(path)\(detail); check the path and its permissions")
        case .SQLITE_PERM, .SQLITE_AUTH:
            return .unavailable("permission denied on the database \(path)\(detail)")
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return .unavailable("\(path) is corrupt or not a Confine database\(detail)")
        case .SQLITE_IOERR:
            return .unavailable("I/O error on the database \(path)\(detail)")
        case .SQLITE_NOMEM:
            return .unavailable("out of memory using the database \(path)")
        case .SQLITE_INTERRUPT:
            return .unavailable("an operation on the database \(path) was interrupted")
        case .SQLITE_CONSTRAINT:
            switch e.extendedResultCode {
            case .SQLITE_CONSTRAINT_UNIQUE, .SQLITE_CONSTRAINT_PRIMARYKEY:
                return .conflict("already stored\(detail)")
            case .SQLITE_CONSTRAINT_FOREIGNKEY:
                return .notFound("the job this refers to\(detail)")
            default:
                return .invalid("the change breaks a rule of the database\(detail)")
            }
        default:
            return .unavailable("database error on \(path): \(e.resultCode)\(detail)")
        }
    }
}
