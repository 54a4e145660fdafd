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
            try await writer.appendOutput(executionID: e.id, stdout: Data("line 1\n".utf8), stderr: Data(), stdoutBytes: 7,
                                          stderrBytes: 0)
            let first = try #require(try await reader.execution(id: e.id))
            #expect(first.status == .running && first.stdout == Data("line 1\n".utf8) && first.stdoutBytes == 7)
            try await writer.appendOutput(executionID: e.id, stdout: Data("line 2\n".utf8), stderr: Data("warn\n".utf8),
                                          stdoutBytes: 14, stderrBytes: 5)
            for store in [writer, reader] {
                let now = try #require(try await store.execution(id: e.id))
                #expect(now.status == .running)
                #expect(now.stdout == Data("line 1\nline 2\n".utf8) && now.stderr == Data("warn\n".utf8))
                #expect(now.stdoutBytes == 14 && now.stderrBytes == 5)
            }
            // The final output replaces what was appended.
            let done = try await writer.finish(executionID: e.id, ExecutionOutcome(
                verdict: .outputLimit, stdout: Data("all of it".utf8), stdoutBytes: 2_000_000, stdoutTruncated: true,
                finishedAt: Date()))
            #expect(done.status == .failed && done.stdout == Data("all of it".utf8) && done.stderr.isEmpty)
            #expect(done.stdoutBytes == 2_000_000 && done.stdoutTruncated)
            #expect(try await reader.execution(id: e.id) == done)
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
            for half in halves {
                try await store.appendOutput(executionID: e.id, stdout: Data(half), stderr: Data(half.reversed()),
                                             stdoutBytes: Int64(half.count), stderrBytes: Int64(half.count))
            }
            let partial = try #require(try await store.execution(id: e.id))
            #expect(partial.stdout == binaryBytes, "appended bytes are kept as they are")
            #expect(partial.stderr == Data(halves[0].reversed()) + Data(halves[1].reversed()))
            let types = try await store.pool.read { db in
                try String.fetchAll(db, sql: """
                    SELECT typeof(stdout) FROM execution WHERE id = ?1 UNION ALL SELECT typeof(stderr) FROM execution WHERE id = ?1
                    UNION ALL SELECT typeof(stdin) FROM execution WHERE id = ?1
                    """, arguments: [e.id])
            }
            #expect(types == ["blob", "blob", "blob"], "stdout, stderr and stdin are BLOBs")

            let done = try await store.finish(executionID: e.id, ExecutionOutcome(
                verdict: .exited, exitCode: 0, stdout: binaryBytes, stderr: Data(), stdoutBytes: Int64(binaryBytes.count),
                finishedAt: Date()))
            #expect(done.stdout == binaryBytes && done.stderr.isEmpty && done.stdin == binaryBytes)
            let empty = try await store.pool.read { db in
                try String.fetchOne(db, sql: "SELECT typeof(stderr) || ':' || length(stderr) FROM execution WHERE id = ?",
                                    arguments: [e.id])
            }
            #expect(empty == "blob:0", "empty output is an empty BLOB, not NULL")
            // Empty appends keep a BLOB too.
            let f = try await store.enqueue(job)
            _ = try await store.claim()
            try await store.appendOutput(executionID: f.id, stdout: Data(), stderr: Data(), stdoutBytes: 0, stderrBytes: 0)
            #expect(try await store.execution(id: f.id)?.stdout == Data())
        }
    }
}
