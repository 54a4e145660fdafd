import Domain
import Foundation
import GRDB
@testable import Store
import Testing

/// The API's bounded reads on the caller's thread (`PointReaders`): they see every write
/// committed before them, read what clients are answered (no snapshots), never wait (a busy
/// database or no idle connection answers nil, and the store falls back to its pool).
@Suite("Point reads")
struct PointReadTests {
    @Test("A read begun after a write committed sees it: each appended piece, then the end")
    func readsSeeWrites() async throws {
        try await withStore { store in
            let job = try await store.makeJob()
            let enqueued = try await store.enqueue(job)
            #expect(try await store.output(executionID: enqueued.id, stdoutFrom: 0, stderrFrom: 0, limit: 1024)?.execution.status == .pending)
            let running = try #require(try await store.claim())
            var written = Data()
            for i in 0..<20 {
                let piece = Data("line \(i)\n".utf8)
                try await store.appendOutput(executionID: running.id, stdout: piece, stdoutOffset: Int64(written.count), stderr: Data(),
                                             stderrOffset: 0, stdoutBytes: Int64(written.count + piece.count), stderrBytes: 0)
                written += piece
                let slice = try #require(try await store.output(executionID: running.id, stdoutFrom: 0, stderrFrom: 0,
                                                                limit: SQLiteStore.pointReadBytes))
                #expect(slice.stdout == written && slice.storedStdout == Int64(written.count) && slice.execution.status == .running)
                #expect(slice.execution.stdoutBytes == Int64(written.count))
            }
            try await store.finish(running.id)
            let final = try #require(try await store.output(executionID: running.id, stdoutFrom: 0, stderrFrom: 0, limit: 1024))
            #expect(final.execution.status == .success && final.stdout == Data("done\n".utf8) && final.storedStderr == 0)
            #expect(try await store.job(id: job.id)?.name == job.name)
        }
    }

    @Test("A run's input files: none, small ones read on the caller's thread, and ones past pointReadBytes read whole from the pool")
    func executionFilesBothWays() async throws {
        try await withStore { store in
            let job = try await store.makeJob()
            let none = try await store.enqueue(job)
            #expect(try await store.executionFiles(id: none.id) == [])
            let small = [InputFile(path: "data/a.txt", content: Data("hello\n".utf8)),
                         InputFile(path: "run.sh", content: Data("echo hi\n".utf8), executable: true)]
            // Past the point read's bound once encoded (base64 in JSON: 4/3 of it and more).
            let large = [InputFile(path: "big.bin", content: Data((0..<(SQLiteStore.pointReadBytes)).map { UInt8(truncatingIfNeeded: $0 &* 31) }))]
            for files in [small, large] {
                var new = makeNewExecution(job)
                new.files = files
                let made = try await store.enqueue(new, queueLimit: 100)
                #expect(try await store.executionFiles(id: made.id) == files)
            }
            #expect(try await store.executionFiles(id: 999_999) == [])
        }
    }

    @Test("What a point read answers has no snapshots, environment, stdin or secrets; execution(id:) has them")
    func answersLeaveSnapshotsOut() async throws {
        try await withStore { store in
            let job = try await store.makeJob()
            let enqueued = try await store.enqueue(SQLiteStore.newExecution(job, stdin: Data("in".utf8)), queueLimit: 10)
            let slice = try #require(try await store.output(executionID: enqueued.id, stdoutFrom: 0, stderrFrom: 0, limit: 10))
            #expect(slice.execution.scriptSnapshot == "" && slice.execution.policySnapshot == "" && slice.execution.stdin == nil)
            #expect(slice.execution.id == enqueued.id && slice.execution.jobID == job.id && slice.execution.createdAt == enqueued.createdAt)
            let whole = try #require(try await store.execution(id: enqueued.id))
            #expect(whole.scriptSnapshot == job.scriptContent && whole.stdin == Data("in".utf8) && !whole.policySnapshot.isEmpty)
            let page = try await store.executions(ExecutionQuery(limit: 10, withOutput: false))
            #expect(page.executions.map(\.id) == [enqueued.id] && page.executions[0].policySnapshot == "")
        }
    }

    @Test("No idle connection: nil at once, and the store still answers from its pool")
    func noIdleConnection() async throws {
        try await withTemporaryFolder { folder in
            let path = folder.appendingPathComponent("confine.sqlite").path
            let store = try SQLiteStore(path: path)
            let job = try await store.makeJob()
            let readers = try PointReaders(path: path, count: 1)
            let nested = try readers.read { _ in try readers.read { _ in 1 } }
            #expect(nested == .some(nil), "the only connection was taken: the inner read must answer nil, not wait")
            #expect(try readers.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job") } == 1)
            #expect(try await store.job(id: job.id)?.name == job.name)
        }
    }

    @Test("A database locked by another connection: nil at once instead of waiting for the lock")
    func busyDatabase() async throws {
        try await withTemporaryFolder { folder in
            // A rollback-journal file, where an exclusive lock keeps readers out (the store's
            // WAL file lets readers in; there a reader is busy only in rare cases, as a recovery).
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let path = folder.appendingPathComponent("plain.sqlite").path
            var configuration = Configuration()
            configuration.busyMode = .immediateError
            configuration.allowsUnsafeTransactions = true  // the lock is held across two accesses
            let other = try DatabaseQueue(path: path, configuration: configuration)
            try other.inDatabase { db in
                try db.execute(sql: "CREATE TABLE job (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO job (name) VALUES ('a')")
            }
            let readers = try PointReaders(path: path, count: 1)
            #expect(try readers.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job") } == 1)
            try other.inDatabase { db in
                try db.execute(sql: "BEGIN EXCLUSIVE")
                try db.execute(sql: "UPDATE job SET name = 'b'")
            }
            let answer = try readers.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job") }
            #expect(answer == nil, "a locked database must make the point read give up (the store then reads from its pool), not wait")
            try other.inDatabase { db in try db.execute(sql: "ROLLBACK") }
            #expect(try readers.read { db in try String.fetchOne(db, sql: "SELECT name FROM job") } == "a")
        }
    }
}
