import Domain
import Foundation
import GRDB
@testable import Store
import Testing

/// The write-ahead log copied back into the database file off the writer's path
/// (`WALCheckpointer`), the writer's own checkpoints kept for a much larger log.
@Suite("WAL checkpoints")
struct CheckpointTests {
    @Test("The log reaches the database file through background checkpoints, long before the writer's own threshold of 4,000 pages; under a steady writer the log still starts over")
    func backgroundCheckpoints() async throws {
        try await withStore { store in
            let threshold = try await store.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") }
            #expect(threshold == WALCheckpointer.writerCheckpointPages && threshold == 4000)
            func fileSize(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 }
            let job = try await store.makeJob()
            _ = try await store.enqueue(job)
            let running = try #require(try await store.claim())
            let before = fileSize(store.path)
            // 50 commits of 4 KiB of output each (about 40 pages of log a commit, measured):
            // half of 4,000 pages, so only the background checkpoints (every 25 commits) copy
            // them into the file.
            let piece = Data(repeating: UInt8(ascii: "x"), count: 4096)
            func append(_ i: Int) async throws {
                try await store.appendOutput(executionID: running.id, stdout: piece, stdoutOffset: Int64(i * piece.count),
                                             stderr: Data(), stderrOffset: 0, stdoutBytes: Int64((i + 1) * piece.count),
                                             stderrBytes: 0)
            }
            for i in 0..<50 { try await append(i) }
            var grown = fileSize(store.path) - before
            for _ in 0..<100 where grown < 400 * 1024 {
                try await Task.sleep(for: .milliseconds(100))
                grown = fileSize(store.path) - before
            }
            #expect(grown >= 150 * 1024, "the database file grew by \(grown) bytes after 200 KiB of output was committed")
            // 650 commits more, back to back (~26,000 pages of log): the background checkpoints
            // alone never find the log fully copied when the writer begins, so the writer's own
            // past 4,000 pages is what lets it start over; without it the log would pass 100 MB.
            for i in 50..<700 { try await append(i) }
            let log = fileSize(store.path + "-wal")
            #expect(log < 2 * WALCheckpointer.writerCheckpointPages * (4096 + 24), "the log is \(log) bytes")
        }
    }
}
