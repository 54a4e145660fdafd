import Foundation
import GRDB

/// How captured output is stored: each stream of an execution as consecutive pieces of at most
/// `pieceBytes` bytes in `execution_output`, keyed by (execution, stream, offset of the piece's
/// first byte in its stream).
///
/// Appending writes only the new bytes (and refills the last piece when it is short), and any
/// range of a stream is read by fetching only the pieces that cover it. A stream kept as one
/// BLOB was rewritten whole on every append, and read whole for any part of it: appending 1 MB
/// to a 200 MB stream took seconds, and so did reading 64 KiB of it.
///
/// Every function runs inside the caller's transaction.
enum OutputPieces {
    /// The largest piece. Reading any range costs at most that much beyond the range.
    static let pieceBytes = 256 * 1024

    /// The stream column's values.
    enum Stream: Int, CaseIterable, CustomStringConvertible {
        case stdout = 1
        case stderr = 2

        var description: String { self == .stdout ? "stdout" : "stderr" }
    }

    /// How many bytes of a stream are stored.
    static func end(_ db: Database, _ id: Int64, _ stream: Stream) throws -> Int64 {
        // length() of a BLOB reads the record's header only, not the bytes.
        try Int64.fetchOne(db.cached("""
            SELECT start + length(data) FROM execution_output WHERE execution_id = ? AND stream = ?
            ORDER BY start DESC LIMIT 1
            """), arguments: [id, stream.rawValue]) ?? 0
    }

    /// A column giving how many bytes of `stream` are stored for the execution whose id is the
    /// statement's first argument (`?1`).
    static func endColumn(_ stream: Stream) -> String {
        "(SELECT start + length(data) FROM execution_output WHERE execution_id = ?1 AND stream = \(stream.rawValue) ORDER BY start DESC LIMIT 1)"
    }

    /// Stores `bytes` as the stream's bytes from `offset` on, after what is stored: bytes before
    /// the stored end are skipped (they are there already); an offset past it is refused.
    static func append(_ db: Database, _ id: Int64, _ stream: Stream, _ bytes: Data, at offset: Int64) throws {
        let stored = try end(db, id, stream)
        guard let new = try newBytes(id, stream, bytes, at: offset, stored: stored) else { return }
        try write(db, id, stream, new, at: stored)
    }

    /// What of `bytes`, given from `offset` on, lies past the `stored` end (nil when nothing);
    /// an offset past the end would leave a gap and is refused. Both stores' `append`.
    static func newBytes(_ id: Int64, _ stream: Stream, _ bytes: Data, at offset: Int64, stored: Int64) throws -> Data? {
        guard offset <= stored else {
            throw StoreError.invalid("""
                output of execution \(id) would leave a gap: \(stream) bytes from \(offset) on were given, \
                but only \(stored) are stored
                """)
        }
        let skip = Int(stored - offset)
        guard skip < bytes.count else { return nil }
        return skip == 0 ? bytes : bytes.subdata(in: (bytes.startIndex + skip)..<bytes.endIndex)
    }

    /// Makes the stream's stored bytes from `offset` on be `bytes`: what is stored before
    /// `offset` stays, what is stored from it on goes. An offset past the stored end is refused.
    static func replace(_ db: Database, _ id: Int64, _ stream: Stream, from offset: Int64, with bytes: Data) throws {
        let stored = try end(db, id, stream)
        guard offset <= stored else {
            throw StoreError.invalid("""
                output of execution \(id) would leave a gap: its final \(stream) starts at byte \(offset), \
                but only \(stored) are stored
                """)
        }
        if offset < stored {
            try db.execute(sql: "DELETE FROM execution_output WHERE execution_id = ? AND stream = ? AND start >= ?",
                           arguments: [id, stream.rawValue, offset])
            // The piece across `offset`, if any, keeps its bytes before it.
            try db.execute(sql: """
                UPDATE execution_output SET data = substr(data, 1, ?3 - start)
                WHERE execution_id = ?1 AND stream = ?2 AND start < ?3 AND start + length(data) > ?3
                """, arguments: [id, stream.rawValue, offset])
        }
        try write(db, id, stream, bytes, at: offset)
    }

    /// Writes `bytes` at `start`, the stream's stored end: first into the last piece while it is
    /// short of `pieceBytes`, then as new pieces.
    private static func write(_ db: Database, _ id: Int64, _ stream: Stream, _ bytes: Data, at start: Int64) throws {
        guard !bytes.isEmpty else { return }
        var position = bytes.startIndex
        var offset = start
        if let last = try Row.fetchOne(db, sql: """
            SELECT start, length(data) FROM execution_output WHERE execution_id = ? AND stream = ?
            ORDER BY start DESC LIMIT 1
            """, arguments: [id, stream.rawValue]) {
            let lastStart: Int64 = last[0], lastLength: Int = last[1]
            let room = pieceBytes - lastLength
            if room > 0, lastStart + Int64(lastLength) == start {
                let part = bytes[position..<min(bytes.endIndex, position + room)]
                // `||` yields TEXT in SQLite (bytes kept as they are): cast back to a BLOB.
                try db.execute(sql: """
                    UPDATE execution_output SET data = CAST(data || ? AS BLOB)
                    WHERE execution_id = ? AND stream = ? AND start = ?
                    """, arguments: [Data(part), id, stream.rawValue, lastStart])
                position += part.count
                offset += Int64(part.count)
            }
        }
        let insert = try db.cachedStatement(sql: "INSERT INTO execution_output (execution_id, stream, start, data) VALUES (?, ?, ?, ?)")
        while position < bytes.endIndex {
            let part = bytes[position..<min(bytes.endIndex, position + pieceBytes)]
            try insert.execute(arguments: [id, stream.rawValue, offset, Data(part)])
            position += part.count
            offset += Int64(part.count)
        }
    }

    /// The stream's stored bytes from `from`, `limit` at most.
    static func read(_ db: Database, _ id: Int64, _ stream: Stream, from: Int64, limit: Int) throws -> Data {
        guard limit > 0 else { return Data() }
        let to = from + Int64(limit)
        // From the last piece starting at or before `from` (a seek in the primary key).
        let rows = try Row.fetchCursor(db.cached("""
            SELECT start, data FROM execution_output
            WHERE execution_id = ?1 AND stream = ?2 AND start < ?4 AND start >= COALESCE(
              (SELECT MAX(start) FROM execution_output WHERE execution_id = ?1 AND stream = ?2 AND start <= ?3), 0)
            ORDER BY start
            """), arguments: [id, stream.rawValue, from, to])
        var out = Data()
        while let row = try rows.next() {
            let start: Int64 = row[0]
            let data: Data = row[1]
            let end = start + Int64(data.count)
            guard end > from else { continue }
            let lower = Int(max(from, start) - start), upper = Int(min(to, end) - start)
            out.append(data.subdata(in: (data.startIndex + lower)..<(data.startIndex + upper)))
        }
        return out
    }

    /// Both streams of each execution, whole.
    static func all(_ db: Database, _ ids: [Int64]) throws -> [Int64: (stdout: Data, stderr: Data)] {
        guard !ids.isEmpty else { return [:] }
        var out: [Int64: (stdout: Data, stderr: Data)] = [:]
        // One execution (its answer, its end): a statement compiled once. A page: one per size.
        let rows = ids.count == 1
            ? try Row.fetchCursor(db.cached("""
                SELECT execution_id, stream, data FROM execution_output WHERE execution_id = ? ORDER BY stream, start
                """), arguments: [ids[0]])
            : try Row.fetchCursor(db, sql: """
                SELECT execution_id, stream, data FROM execution_output
                WHERE execution_id IN (\(ids.map { _ in "?" }.joined(separator: ", "))) ORDER BY execution_id, stream, start
                """, arguments: StatementArguments(ids))
        while let row = try rows.next() {
            let id: Int64 = row[0], stream: Int = row[1], data: Data = row[2]
            var both = out[id] ?? (Data(), Data())
            if stream == Stream.stdout.rawValue { both.stdout.append(data) } else { both.stderr.append(data) }
            out[id] = both
        }
        return out
    }

    /// Removes an execution's output.
    static func clear(_ db: Database, _ id: Int64) throws {
        try db.execute(sql: "DELETE FROM execution_output WHERE execution_id = ?", arguments: [id])
    }
}
