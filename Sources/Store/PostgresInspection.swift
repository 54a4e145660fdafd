import Foundation
import Logging
import PostgresNIO

/// What `confine doctor` learns of a PostgreSQL database without changing it: the server's
/// version, the schema version the database is at, and how far this host's clock is from the
/// server's (nodes compare heartbeats written with the database's clock against node_timeout).
public struct PostgresInspection: Sendable {
    /// `server_version`, e.g. "15.18 (Debian 15.18-0+deb12u1)".
    public var serverVersion: String
    /// The newest schema version recorded, nil for a database Confine never opened.
    public var schemaVersion: String?
    /// Versions recorded that this build does not know (a newer Confine's).
    public var unknownVersions: [String]
    /// This host's clock minus the server's, in milliseconds (the round trip's half removed).
    public var clockSkewMs: Int64
    /// The round trip of the clock query, in milliseconds.
    public var roundTripMs: Int64

    /// Connects once (waiting at most `timeout`), reads, disconnects. Failures are
    /// `StoreError.unavailable` naming the address (password hidden) and the reason.
    public static func inspect(_ address: PostgresAddress, timeout: Duration = .seconds(5)) async throws -> PostgresInspection {
        let logger = Logger(label: "confine.doctor.postgres")
        do {
            return try await PostgresStore.withOwnConnection(address, timeout: timeout, logger: logger) { connection in
            let version = try await connection.first("SHOW server_version", logger)?.decode(String.self) ?? "unknown"
            let applied = try await PostgresSchema.applied(connection, logger: logger)
            let known = applied.filter { PostgresSchema.versions.contains($0) }
            let newest = known.max { PostgresSchema.versions.firstIndex(of: $0)! < PostgresSchema.versions.firstIndex(of: $1)! }
            let before = Date()
            let serverMs = try await connection.first(
                "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint", logger)?.decode(Int64.self) ?? 0
            let after = Date()
            let trip = Millis.of(after) - Millis.of(before)
            let localMs = Millis.of(before) + trip / 2
            return PostgresInspection(serverVersion: version, schemaVersion: newest,
                                      unknownVersions: applied.filter { !PostgresSchema.versions.contains($0) },
                                      clockSkewMs: localMs - serverMs, roundTripMs: trip)
            }
        } catch {
            throw StoreError.unavailable("cannot use PostgreSQL at \(address): \(PostgresStore.describe(error))")
        }
    }
}
