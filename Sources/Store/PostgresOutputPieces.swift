import Foundation
import PostgresNIO

/// Output in pieces on PostgreSQL, as `OutputPieces` on SQLite: each stream of an execution as
/// consecutive pieces of at most `OutputPieces.pieceBytes` in `execution_output`, keyed by
/// (execution, stream, offset of the piece's first byte). Appends write only the new bytes,
/// reads fetch only the pieces that cover the range. Every function runs in the caller's
/// transaction (or statement).
enum PostgresOutputPieces {
    typealias Stream = OutputPieces.Stream

    /// How many bytes of a stream are stored.
    static func end(_ connection: PostgresConnection, _ id: Int64, _ stream: Stream, _ logger: Logger) async throws -> Int64 {
        var q = SQL()
        q.append("""
            SELECT start + octet_length(data) FROM execution_output WHERE execution_id = \(q.bind(id))
              AND stream = \(q.bind(Int64(stream.rawValue))) ORDER BY start DESC LIMIT 1
            """)
        return try await connection.first(q.query, logger)?.decode(Int64.self) ?? 0
    }

    /// A column giving how many bytes of `stream` are stored for the execution row `table`
    /// (the table's name or alias in the statement).
    static func endColumn(_ stream: Stream, of table: String = "execution") -> String {
        """
        COALESCE((SELECT o.start + octet_length(o.data) FROM execution_output o WHERE o.execution_id = \(table).id \
        AND o.stream = \(stream.rawValue) ORDER BY o.start DESC LIMIT 1), 0)
        """
    }

    /// A column giving the stored bytes of `stream` of the execution row `execution` from byte
    /// `from` up to `to` (both SQL expressions: binds), the pieces covering the range cut and
    /// joined in order (empty when none).
    static func rangeColumn(_ stream: Stream, from: String, to: String) -> String {
        """
        COALESCE((SELECT string_agg(substring(o.data FROM (GREATEST(\(from), o.start) - o.start + 1)::int \
        FOR (LEAST(\(to), o.start + octet_length(o.data)) - GREATEST(\(from), o.start))::int), ''::bytea ORDER BY o.start) \
        FROM execution_output o WHERE o.execution_id = execution.id AND o.stream = \(stream.rawValue) \
        AND o.start < \(to) AND o.start + octet_length(o.data) > \(from)), ''::bytea)
        """
    }

    /// Stores `bytes` as the stream's bytes from `offset` on, after what is stored: bytes
    /// before the stored end are skipped; an offset past it is refused.
    static func append(_ connection: PostgresConnection, _ id: Int64, _ stream: Stream, _ bytes: Data, at offset: Int64,
                       _ logger: Logger) async throws {
        let stored = try await end(connection, id, stream, logger)
        guard let new = try OutputPieces.newBytes(id, stream, bytes, at: offset, stored: stored) else { return }
        try await write(connection, id, stream, new, at: stored, logger)
    }

    /// Makes the stream's stored bytes from `offset` on be `bytes`.
    static func replace(_ connection: PostgresConnection, _ id: Int64, _ stream: Stream, from offset: Int64, with bytes: Data,
                        _ logger: Logger) async throws {
        let stored = try await end(connection, id, stream, logger)
        guard offset <= stored else {
            throw StoreError.invalid("""
                output of execution \(id) would leave a gap: its final \(stream) starts at byte \(offset), \
                but only \(stored) are stored
                """)
        }
        if offset < stored {
            var q = SQL()
            q.append("""
                DELETE FROM execution_output WHERE execution_id = \(q.bind(id)) AND stream = \(q.bind(Int64(stream.rawValue)))
                  AND start >= \(q.bind(offset))
                """)
            try await connection.query(q.query, logger: logger)
            var cut = SQL()
            let o = cut.bind(offset)
            cut.append("""
                UPDATE execution_output SET data = substring(data FROM 1 FOR (\(o) - start)::int)
                WHERE execution_id = \(cut.bind(id)) AND stream = \(cut.bind(Int64(stream.rawValue)))
                  AND start < \(o) AND start + octet_length(data) > \(o)
                """)
            try await connection.query(cut.query, logger: logger)
        }
        try await write(connection, id, stream, bytes, at: offset, logger)
    }

    /// Writes `bytes` at `start`, the stream's stored end: first into the last piece while it
    /// is short, then as new pieces.
    private static func write(_ connection: PostgresConnection, _ id: Int64, _ stream: Stream, _ bytes: Data, at start: Int64,
                              _ logger: Logger) async throws {
        guard !bytes.isEmpty else { return }
        var position = bytes.startIndex
        var offset = start
        var last = SQL()
        last.append("""
            SELECT start, octet_length(data)::bigint FROM execution_output WHERE execution_id = \(last.bind(id))
              AND stream = \(last.bind(Int64(stream.rawValue))) ORDER BY start DESC LIMIT 1
            """)
        if let row = try await connection.first(last.query, logger) {
            let (lastStart, lastLength) = try row.decode((Int64, Int64).self)
            let room = OutputPieces.pieceBytes - Int(lastLength)
            if room > 0, lastStart + lastLength == start {
                let part = Data(bytes[position..<min(bytes.endIndex, position + room)])
                var q = SQL()
                q.append("""
                    UPDATE execution_output SET data = data || \(q.bind(part))
                    WHERE execution_id = \(q.bind(id)) AND stream = \(q.bind(Int64(stream.rawValue))) AND start = \(q.bind(lastStart))
                    """)
                try await connection.query(q.query, logger: logger)
                position += part.count
                offset += Int64(part.count)
            }
        }
        while position < bytes.endIndex {
            let part = Data(bytes[position..<min(bytes.endIndex, position + OutputPieces.pieceBytes)])
            var q = SQL()
            q.append("""
                INSERT INTO execution_output (execution_id, stream, start, data)
                VALUES (\(q.bind(id)), \(q.bind(Int64(stream.rawValue))), \(q.bind(offset)), \(q.bind(part)))
                """)
            try await connection.query(q.query, logger: logger)
            position += part.count
            offset += Int64(part.count)
        }
    }

    /// The stream's stored bytes from `from`, `limit` at most.
    static func read(_ connection: PostgresConnection, _ id: Int64, _ stream: Stream, from: Int64, limit: Int,
                     _ logger: Logger) async throws -> Data {
        guard limit > 0 else { return Data() }
        let to = from + Int64(limit)
        var q = SQL()
        let i = q.bind(id), s = q.bind(Int64(stream.rawValue))
        q.append("""
            SELECT start, data FROM execution_output
            WHERE execution_id = \(i) AND stream = \(s) AND start < \(q.bind(to)) AND start >= COALESCE(
              (SELECT MAX(start) FROM execution_output WHERE execution_id = \(i) AND stream = \(s) AND start <= \(q.bind(from))), 0)
            ORDER BY start
            """)
        var out = Data()
        for row in try await connection.all(q.query, logger) {
            let (start, data) = try row.decode((Int64, Data).self)
            let end = start + Int64(data.count)
            guard end > from else { continue }
            let lower = Int(max(from, start) - start), upper = Int(min(to, end) - start)
            out.append(data.subdata(in: (data.startIndex + lower)..<(data.startIndex + upper)))
        }
        return out
    }

    /// Both streams of each execution, whole.
    static func all(_ connection: PostgresConnection, _ ids: [Int64], _ logger: Logger) async throws
        -> [Int64: (stdout: Data, stderr: Data)] {
        guard !ids.isEmpty else { return [:] }
        var q = SQL()
        q.append("""
            SELECT execution_id, stream, data FROM execution_output WHERE execution_id = ANY(\(q.bind(ids)))
            ORDER BY execution_id, stream, start
            """)
        var out: [Int64: (stdout: Data, stderr: Data)] = [:]
        for row in try await connection.all(q.query, logger) {
            let (id, stream, data) = try row.decode((Int64, Int64, Data).self)
            var both = out[id] ?? (Data(), Data())
            if stream == Int64(Stream.stdout.rawValue) { both.stdout.append(data) } else { both.stderr.append(data) }
            out[id] = both
        }
        return out
    }

    /// Removes an execution's output.
    static func clear(_ connection: PostgresConnection, _ id: Int64, _ logger: Logger) async throws {
        var q = SQL("DELETE FROM execution_output WHERE execution_id = ")
        q.append(q.bind(id))
        try await connection.query(q.query, logger: logger)
    }
}
