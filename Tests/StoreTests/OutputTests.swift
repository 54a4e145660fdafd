import Domain
import Foundation
import GRDB
@testable import Store
import Testing

/// Captured output: partial while running, binary-safe, replaced at the end.
@Suite("Store output")
struct OutputTests {
    @Test("Partial output of a RUNNING execution is visible to readers (this store and another connection to the file)")
    func partialOutputVisible() async throws {
        try await withTemporaryFolder { folder in
            let path = folder.appendingPathComponent("confine.sqlite").path
            let writer = try SQLiteStore(path: path)
            let reader = try SQLiteStore(path: path)
            let job = try await writer.makeJob()
            let e = try await writer.enqueue(job)
            _ = try await writer.claim()
            try await writer.appendOutput(executionID: e.id, stdout: Data("line 1\n".utf8), stdoutOffset: 0, stderr: Data(),
                                          stderrOffset: 0, stdoutBytes: 7, stderrBytes: 0)
            let first = try #require(try await reader.execution(id: e.id))
            #expect(first.status == .running && first.stdout == Data("line 1\n".utf8) && first.stdoutBytes == 7)
            try await writer.appendOutput(executionID: e.id, stdout: Data("line 2\n".utf8), stdoutOffset: 7, stderr: Data("warn\n".utf8),
                                          stderrOffset: 0, stdoutBytes: 14, stderrBytes: 5)
            for store in [writer, reader] {
                let now = try #require(try await store.execution(id: e.id))
                #expect(now.status == .running)
                #expect(now.stdout == Data("line 1\nline 2\n".utf8) && now.stderr == Data("warn\n".utf8))
                #expect(now.stdoutBytes == 14 && now.stderrBytes == 5)
            }
            // The final output (from offset 0) replaces what was appended.
            _ = try await writer.finish(executionID: e.id, ExecutionOutcome(
                verdict: .outputLimit, stdout: Data("all of it".utf8), stdoutBytes: 2_000_000, stdoutTruncated: true,
                finishedAt: Date()))
            let done = try #require(try await reader.execution(id: e.id))
            #expect(done.status == .failed && done.stdout == Data("all of it".utf8) && done.stderr.isEmpty)
            #expect(done.stdoutBytes == 2_000_000 && done.stdoutTruncated)
            #expect(try await writer.execution(id: e.id) == done)
        }
    }

    @Test("Binary round trip: all 256 byte values and invalid UTF-8, through stdin, appended output and final output")
    func binaryRoundTrip() async throws {
        try await withStore { store in
            let job = try await store.makeJob()
            let e = try await store.enqueue(SQLiteStore.newExecution(job, stdin: binaryBytes), queueLimit: 10)
            #expect(e.stdin == binaryBytes)
            _ = try await store.claim()
            // Appends that start and end in the middle of a would-be UTF-8 sequence, and NULs.
            let halves = [binaryBytes.prefix(129), binaryBytes.dropFirst(129)]
            var offset: Int64 = 0
            for half in halves {
                try await store.appendOutput(executionID: e.id, stdout: Data(half), stdoutOffset: offset, stderr: Data(half.reversed()),
                                             stderrOffset: offset, stdoutBytes: offset + Int64(half.count),
                                             stderrBytes: offset + Int64(half.count))
                offset += Int64(half.count)
            }
            let partial = try #require(try await store.execution(id: e.id))
            #expect(partial.stdout == binaryBytes, "appended bytes are kept as they are")
            #expect(partial.stderr == Data(halves[0].reversed()) + Data(halves[1].reversed()))
            let types = try await store.pool.read { db in
                try String.fetchAll(db, sql: """
                    SELECT DISTINCT typeof(data) FROM execution_output WHERE execution_id = ?1
                    UNION ALL SELECT typeof(stdin) FROM execution WHERE id = ?1
                    """, arguments: [e.id])
            }
            #expect(types == ["blob", "blob"], "output pieces and stdin are BLOBs")

            _ = try await store.finish(executionID: e.id, ExecutionOutcome(
                verdict: .exited, exitCode: 0, stdout: binaryBytes, stderr: Data(), stdoutBytes: Int64(binaryBytes.count),
                finishedAt: Date()))
            let done = try #require(try await store.execution(id: e.id))
            #expect(done.stdout == binaryBytes && done.stderr.isEmpty && done.stdin == binaryBytes)
            let stderrPieces = try await store.pool.read { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM execution_output WHERE execution_id = ? AND stream = 2",
                                 arguments: [e.id])
            }
            #expect(stderrPieces == 0, "an empty final stream leaves no piece")
            // Empty appends keep a BLOB too.
            let f = try await store.enqueue(job)
            _ = try await store.claim()
            try await store.appendOutput(executionID: f.id, stdout: Data(), stdoutOffset: 0, stderr: Data(), stderrOffset: 0,
                                         stdoutBytes: 0, stderrBytes: 0)
            #expect(try await store.execution(id: f.id)?.stdout == Data())
        }
    }

    @Test("Pieces: appends fill the last piece, then add pieces of at most pieceBytes; any range reads back exactly")
    func pieces() async throws {
        try await withStore { store in
            let job = try await store.makeJob()
            let e = try await store.enqueue(job)
            _ = try await store.claim()
            let piece = OutputPieces.pieceBytes
            let bytes = Data((0..<(piece * 3 + 1000)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) })
            // Appends of uneven sizes, one of them across a piece boundary.
            var offset = 0
            for size in [10, piece - 20, 30, piece * 2, bytes.count] where offset < bytes.count {
                let end = min(bytes.count, offset + size)
                try await store.appendOutput(executionID: e.id, stdout: bytes.subdata(in: offset..<end), stdoutOffset: Int64(offset),
                                             stderr: Data(), stderrOffset: 0, stdoutBytes: Int64(end), stderrBytes: 0)
                offset = end
            }
            let lengths = try await store.pool.read { db in
                try Int.fetchAll(db, sql: "SELECT length(data) FROM execution_output WHERE execution_id = ? ORDER BY start",
                                 arguments: [e.id])
            }
            #expect(lengths == [piece, piece, piece, 1000], "short pieces are refilled before new ones are added")
            #expect(try await store.execution(id: e.id)?.stdout == bytes)
            for (from, limit) in [(0, 1), (5, 100), (piece - 3, 10), (piece, piece), (piece * 2 + 17, piece + 50),
                                  (bytes.count - 1, 10), (bytes.count, 10), (bytes.count + 5, 10)] {
                let slice = try #require(try await store.output(executionID: e.id, stdoutFrom: Int64(from), stderrFrom: 0, limit: limit))
                let expected = from < bytes.count ? bytes.subdata(in: from..<min(bytes.count, from + limit)) : Data()
                #expect(slice.stdout == expected, "from \(from) limit \(limit)")
                #expect(slice.storedStdout == Int64(bytes.count) && slice.storedStderr == 0 && slice.stderr.isEmpty)
                #expect(slice.execution.status == .running && slice.execution.stdout.isEmpty)
            }
            #expect(try await store.output(executionID: 999, stdoutFrom: 0, stderrFrom: 0, limit: 10) == nil)
        }
    }

    @Test("Appends with offsets: a repeated append stores nothing twice, a gap is refused; finish replaces from its offsets", arguments: StoreKind.allCases)
    func offsets(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob()
            let e = try await store.enqueue(job)
            _ = try await store.claim()
            func append(_ out: String, at o: Int64, _ err: String = "", at eo: Int64 = 0) async throws {
                try await store.appendOutput(executionID: e.id, stdout: Data(out.utf8), stdoutOffset: o, stderr: Data(err.utf8),
                                             stderrOffset: eo, stdoutBytes: o + Int64(out.utf8.count),
                                             stderrBytes: eo + Int64(err.utf8.count))
            }
            try await append("hello ", at: 0, "e1", at: 0)
            try await append("hello ", at: 0, "e1", at: 0)  // repeated after an uncertain failure
            try await append("lo world", at: 3)  // overlaps: only "world" is new
            #expect(try await store.execution(id: e.id)?.stdout == Data("hello world".utf8))
            await #expect(throws: StoreError.self) { try await append("!", at: 20) }
            #expect(try await store.execution(id: e.id)?.stdout == Data("hello world".utf8), "a refused append changes nothing")

            // The engine's end: what it has not appended yet, from the offsets it knows stored.
            _ = try await store.finish(executionID: e.id, ExecutionOutcome(
                verdict: .exited, exitCode: 0, stdout: Data("WORLD!".utf8), stderr: Data("e2".utf8), stdoutOffset: 6,
                stderrOffset: 2, stdoutBytes: 12, stderrBytes: 4, finishedAt: Date()))
            let done = try #require(try await store.execution(id: e.id))
            #expect(done.stdout == Data("hello WORLD!".utf8) && done.stderr == Data("e1e2".utf8))
            let slice = try #require(try await store.output(executionID: e.id, stdoutFrom: 6, stderrFrom: 1, limit: 100))
            #expect(slice.stdout == Data("WORLD!".utf8) && slice.stderr == Data("1e2".utf8) && slice.execution.status == .success)
            #expect(slice.storedStdout == 12 && slice.storedStderr == 4)

            // Both streams share a slice's limit; what one does not need goes to the other.
            let small = try #require(try await store.output(executionID: e.id, stdoutFrom: 0, stderrFrom: 0, limit: 6))
            #expect(small.stdout == Data("hel".utf8) && small.stderr == Data("e1e".utf8))
            let lopsided = try #require(try await store.output(executionID: e.id, stdoutFrom: 0, stderrFrom: 3, limit: 6))
            #expect(lopsided.stdout == Data("hello ".utf8).prefix(5) && lopsided.stderr == Data("2".utf8))
        }
    }

    @Test("A taken-over execution loses its partial output; a pruned or deleted one takes its pieces along")
    func piecesGoWithTheirExecution() async throws {
        try await withStore { store in
            let job = try await store.makeJob()
            let e = try await store.enqueue(job)
            let t0 = millis(Date())
            _ = try await store.claimNext(worker: "a", leaseUntil: t0 + 1, now: t0)
            try await store.appendOutput(executionID: e.id, stdout: Data("partial".utf8), stdoutOffset: 0, stderr: Data("x".utf8),
                                         stderrOffset: 0, stdoutBytes: 7, stderrBytes: 1)
            let taken = try #require(try await store.claimNext(worker: "b", leaseUntil: t0 + 60, now: t0 + 5))
            #expect(taken.id == e.id && taken.stdout.isEmpty && taken.stderr.isEmpty && taken.stdoutBytes == 0)
            try await store.appendOutput(executionID: e.id, stdout: Data("again".utf8), stdoutOffset: 0, stderr: Data(),
                                         stderrOffset: 0, stdoutBytes: 5, stderrBytes: 0)
            #expect(try await store.execution(id: e.id)?.stdout == Data("again".utf8))
            _ = try await store.finish(executionID: e.id, ExecutionOutcome(verdict: .exited, exitCode: 0, stdout: Data(),
                                                                           stdoutOffset: 5, finishedAt: Date()))
            #expect(try await store.execution(id: e.id)?.stdout == Data("again".utf8))
            #expect(try await store.prune(keepPerJob: 0, olderThan: nil) == 1)
            let left = try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM execution_output") }
            #expect(left == 0)
        }
    }
}
