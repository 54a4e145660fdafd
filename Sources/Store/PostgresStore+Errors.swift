import Foundation
import NIOCore
import PostgresNIO

// Every failure of PostgreSQL or of the way to it as a `StoreError` with words an operator can
// act on, the address always with its password hidden.

extension PostgresStore {
    func storeError(_ error: any Error) -> StoreError {
        if let e = error as? StoreError { return e }
        if let e = error as? DeadlineExceeded {
            return .unavailable("PostgreSQL at \(address) did not answer within \(Self.seconds(e.limit))")
        }
        if error is CancellationError { return .unavailable("the request was cancelled before PostgreSQL at \(address) answered") }
        if let e = error as? PSQLError, let state = e.serverInfo?[.sqlState] {
            let message = e.serverInfo?[.message] ?? "error \(state)"
            let detail = e.serverInfo?[.detail].map { " (\($0))" } ?? ""
            switch state {
            case "23505": return .conflict("already stored: \(message)\(detail)")
            case "23503": return .notFound("the row this refers to: \(message)\(detail)")
            case "23502", "23514", "22001", "22003", "22P02", "22021":
                return .invalid("the change breaks a rule of the database: \(message)\(detail)")
            case "53100": return .unavailable("PostgreSQL at \(address): its disk is full (\(message))")
            case "57P01", "57P02", "57P03":
                return .unavailable("PostgreSQL at \(address) is shutting down or starting: \(message)")
            case "28P01", "28000":
                return .unavailable("PostgreSQL at \(address) refused the login: \(message)")
            case "3D000":
                return .unavailable("PostgreSQL at \(address): \(message); create it (createdb) or correct the URL")
            case "40001", "40P01":
                return .unavailable("PostgreSQL at \(address) aborted a transaction that met another (\(message)); retry")
            default:
                return .unavailable("PostgreSQL at \(address): \(message) [\(state)]\(detail)")
            }
        }
        if let e = error as? PostgresDecodingError {
            return .invalid("PostgreSQL at \(address): column \(e.columnName) could not be read as \(e.targetType) (\(e.code))")
        }
        return .unavailable("PostgreSQL at \(address): \(reason(of: error))")
    }

    /// Why the database could not be reached or answered, in words (never the password).
    func reason(of error: any Error) -> String { Self.describe(error) }

    /// `reason(of:)` without a store.
    static func describe(_ error: any Error) -> String {
        if let e = error as? StoreError { return e.description }
        if let e = error as? DeadlineExceeded { return "no answer within \(Self.seconds(e.limit))" }
        if let e = error as? PSQLError {
            if let message = e.serverInfo?[.message] { return message }
            if let underlying = e.underlying { return PostgresAddress.redact("\(underlying)") }
            return e.code.description
        }
        return PostgresAddress.redact("\(error)")
    }
}
