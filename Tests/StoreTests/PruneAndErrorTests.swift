import Dispatch
import Domain
import Foundation
import GRDB
@testable import Store
import Testing

/// Retention, and failures of the database as `StoreError`s.
@Suite("Store pruning and errors")
struct PruneAndErrorTests {
    @Test("Prune by count keeps the newest finished per job; PENDING and RUNNING are never touched nor counted", arguments: StoreKind.allCases)
    func pruneByCount(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let a = try await store.makeJob(), b = try await store.makeJob()
            var finishedA: [Int64] = [], finishedB: [Int64] = []
            for i in 0..<5 {
                let e = try await store.enqueue(a)
                _ = try await store.claim()
                finishedA.append(try await store.finish(e.id, i % 2 == 0 ? .exited : .wallTimeout).id)
            }
            for _ in 0..<3 {
                let e = try await store.enqueue(b)
                finishedB.append(try await store.cancel(executionID: e.id, now: Date()).id)
            }
            let running = try await store.enqueue(a)
            _ = try await store.claim()
            let pending = try await store.enqueue(a)

            #expect(try await store.prune(keepPerJob: 2, olderThan: nil) == 4)
            #expect(try await store.walk(ExecutionQuery(jobID: a.id)) == [pending.id, running.id, finishedA[4], finishedA[3]])
            #expect(try await store.walk(ExecutionQuery(jobID: b.id)) == [finishedB[2], finishedB[1]])
            #expect(try await store.prune(keepPerJob: 2, olderThan: nil) == 0, "nothing more to prune")
            #expect(try await store.prune(keepPerJob: 0, olderThan: nil) == 4)
            #expect(try await store.walk(ExecutionQuery()) == [pending.id, running.id])
            #expect(try await store.prune(keepPerJob: nil, olderThan: nil) == 0)
        }
    }

    @Test("Prune by age deletes what finished before the date, never PENDING or RUNNING however old", arguments: StoreKind.allCases)
    func pruneByAge(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let job = try await store.makeJob()
            let now = Date()
            let longAgo = now - 30 * 86_400
            let oldPending = try await store.enqueue(job, priority: -1, at: longAgo)
            let oldRunning = try await store.enqueue(job, at: longAgo)
            _ = try await store.claimNext(worker: "w", leaseUntil: now + 60, now: longAgo)
            var old: [Int64] = [], recent: [Int64] = []
            for i in 0..<6 {
                let e = try await store.enqueue(job, at: longAgo)
                _ = try await store.claim()
                try await store.finish(e.id, at: i < 4 ? longAgo + TimeInterval(i) : now - 60)
                if i < 4 { old.append(e.id) } else { recent.append(e.id) }
            }
            #expect(try await store.prune(keepPerJob: nil, olderThan: now - 86_400) == old.count)
            #expect(Set(try await store.walk(ExecutionQuery())) == Set([oldPending.id, oldRunning.id] + recent))
            #expect(try await store.prune(keepPerJob: nil, olderThan: now + 86_400) == recent.count)
            #expect(try await store.walk(ExecutionQuery()) == [oldRunning.id, oldPending.id].sorted(by: >))
            #expect(try await store.execution(id: oldRunning.id)?.status == .running)
        }
    }

    @Test("Prune in batches: thousands of rows, counts exact, the guards hold in every batch")
    func pruneBatches() async throws {
        try await withStore { store in
            let job = try await store.makeJob()
            let count = SQLiteStore.pruneBatch * 2 + 234
            try await store.pool.write { db in
                for i in 0..<count {
                    try db.execute(sql: """
                        INSERT INTO execution (job_id, status, verdict, script_type, script_snapshot, policy_name, policy_snapshot,
                                               concurrency, stdout, created_at, finished_at)
                        VALUES (?, 'SUCCESS', 'exited', 'bash', 'true', 'default', '', 'allow', zeroblob(1000), ?, ?)
                        """, arguments: [job.id, i, i])
                }
            }
            let running = try await store.enqueue(job, at: Date(timeIntervalSince1970: 0))
            let pending = try await store.enqueue(job, priority: -1, at: Date(timeIntervalSince1970: 0))
            #expect(try await store.claim()?.id == running.id)
            #expect(try await store.prune(keepPerJob: 10, olderThan: nil) == count - 10)
            #expect(try await store.prune(keepPerJob: nil, olderThan: Date()) == 10)
            #expect(try await store.walk(ExecutionQuery()) == [pending.id, running.id])
        }
    }

    @Test("A folder that cannot be made, or a file that is not a database: unavailable, saying which")
    func unusableFiles() async throws {
        let folderError = #expect(throws: StoreError.self) { _ = try SQLiteStore(path: "/proc/confine-cannot/db.sqlite") }
        guard case .unavailable(let why) = folderError else {
            Issue.record("expected unavailable, got \(String(describing: folderError))")
            return
        }
        #expect(why.contains("cannot create the database folder /proc/confine-cannot"), "\(why)")

        try await withTemporaryFolder { folder in
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let path = folder.appendingPathComponent("garbage.sqlite").path
            try Data(repeating: 0x5a, count: 8192).write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: StoreError.self) { _ = try SQLiteStore(path: path) }
            #expect(error == .unavailable("\(path) is corrupt or not a Confine database (file is not a database)"),
                    "\(String(describing: error))")
        }
    }

    @Test("A full disk is unavailable naming the file, and the failed write leaves nothing behind")
    func diskFull() async throws {
        try await withStore { store in
            let job = try await store.makeJob()
            let e = try await store.enqueue(job)
            _ = try await store.claim()
            try await store.appendOutput(executionID: e.id, stdout: Data("kept".utf8), stdoutOffset: 0, stderr: Data(),
                                         stderrOffset: 0, stdoutBytes: 4, stderrBytes: 0)
            // The writer connection may not grow the file any further: what a full disk looks like to SQLite.
            try await store.pool.write { db in
                let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
                try db.execute(sql: "PRAGMA max_page_count = \(pages)")
            }
            await #expect(throws: StoreError.diskFull(path: store.path)) {
                try await store.appendOutput(executionID: e.id, stdout: Data(count: 1 << 20), stdoutOffset: 4, stderr: Data(),
                                             stderrOffset: 0, stdoutBytes: 1 << 20, stderrBytes: 0)
            }
            let now = try #require(try await store.execution(id: e.id))
            #expect(now.stdout == Data("kept".utf8) && now.stdoutBytes == 4 && now.status == .running)
            try await store.pool.write { db in try db.execute(sql: "PRAGMA max_page_count = 1073741823") }
            try await store.appendOutput(executionID: e.id, stdout: Data(count: 1 << 20), stdoutOffset: 4, stderr: Data(),
                                         stderrOffset: 0, stdoutBytes: (1 << 20) + 4, stderrBytes: 0)
            #expect(try await store.execution(id: e.id)?.stdout.count == (1 << 20) + 4)
        }
    }

    @Test("On a full disk an execution still ends, keeping the output stored while it ran, marked truncated")
    func finishKeepingStoredOutput() async throws {
        try await withStore { store in
            let job = try await store.makeJob()
            let e = try await store.enqueue(job)
            _ = try await store.claim()
            try await store.appendOutput(executionID: e.id, stdout: Data("kept".utf8), stdoutOffset: 0, stderr: Data("err".utf8),
                                         stderrOffset: 0, stdoutBytes: 4, stderrBytes: 3)
            try await store.pool.write { db in
                let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
                try db.execute(sql: "PRAGMA max_page_count = \(pages)")
            }
            let complete = ExecutionOutcome(verdict: .exited, exitCode: 0, reason: nil, stdout: Data(count: 1 << 20),
                                            stderr: Data("err".utf8), stdoutBytes: 1 << 20, stderrBytes: 3,
                                            finishedAt: Date())
            await #expect(throws: StoreError.diskFull(path: store.path)) {
                try await store.finish(executionID: e.id, complete)
            }
            var lean = complete
            lean.keepsStoredOutput = true
            lean.reason = "the disk was full"
            _ = try await store.finish(executionID: e.id, lean)
            let ended = try #require(try await store.execution(id: e.id))
            #expect(ended.status == .success && ended.exitCode == 0 && ended.reason == "the disk was full")
            #expect(ended.stdout == Data("kept".utf8) && ended.stdoutBytes == 1 << 20 && ended.stdoutTruncated)
            #expect(ended.stderr == Data("err".utf8) && ended.stderrBytes == 3 && !ended.stderrTruncated)
        }
    }

    @Test("Another process holding the write lock: writes fail as unavailable after the busy timeout, reads go on")
    func busy() async throws {
        try await withStore(busyTimeout: 0.2) { store in
            let job = try await store.makeJob()
            let e = try await store.enqueue(job)
            let other = try DatabaseQueue(path: store.path)
            let state = Locked((locked: false, release: false, done: false))
            DispatchQueue.global().async {
                try? other.inTransaction(.immediate) { _ in
                    state.withLock { $0.locked = true }
                    while !state.withLock({ $0.release }) { usleep(1000) }
                    return .commit
                }
                state.withLock { $0.done = true }
            }
            while !state.withLock({ $0.locked }) { try await Task.sleep(for: .milliseconds(1)) }
            let started = Date()
            let error = await #expect(throws: StoreError.self) { _ = try await store.enqueue(job) }
            #expect(Date().timeIntervalSince(started) >= 0.15, "it waited for the busy timeout")
            guard case .unavailable(let why) = error else {
                Issue.record("expected unavailable, got \(String(describing: error))")
                state.withLock { $0.release = true }
                return
            }
            #expect(why.contains("is busy") && why.contains(store.path), "\(why)")
            #expect(try await store.execution(id: e.id)?.status == .pending, "readers are not blocked by the writer")
            state.withLock { $0.release = true }
            while !state.withLock({ $0.done }) { try await Task.sleep(for: .milliseconds(1)) }
            #expect(try await store.enqueue(job).status == .pending, "writes work again once the lock is released")
            #expect(try await store.executionCount() == 2, "the refused write stored nothing")
        }
    }

    @Test("Every error is mapped to a StoreError with specific words")
    func errorMapping() {
        let path = "/var/lib/confine/confine.sqlite"
        func map(_ error: any Error) -> StoreError { SQLiteStore.storeError(error, path: path) }
        #expect(map(DatabaseError(resultCode: .SQLITE_FULL, message: "database or disk is full"))
                == .diskFull(path: path))
        #expect(map(DatabaseError(resultCode: .SQLITE_BUSY, message: "database is locked"))
                == .unavailable("the database \(path) is busy: another process holds its write lock (database is locked)"))
        #expect(map(DatabaseError(resultCode: .SQLITE_LOCKED, message: "database table is locked"))
                == .unavailable("the database \(path) is locked by another connection (database table is locked)"))
        #expect(map(DatabaseError(resultCode: .SQLITE_READONLY, message: "attempt to write a readonly database"))
                == .unavailable("the database \(path) is read-only (attempt to write a readonly database)"))
        #expect(map(DatabaseError(resultCode: .SQLITE_IOERR_WRITE, message: "disk I/O error"))
                == .unavailable("I/O error on the database \(path) (disk I/O error)"))
        #expect(map(DatabaseError(resultCode: .SQLITE_CONSTRAINT_FOREIGNKEY, message: "FOREIGN KEY constraint failed"))
                == .notFound("the job this refers to (FOREIGN KEY constraint failed)"))
        #expect(map(DatabaseError(resultCode: .SQLITE_CONSTRAINT_UNIQUE, message: "UNIQUE constraint failed: job.name"))
                == .conflict("already stored (UNIQUE constraint failed: job.name)"))
        #expect(map(DatabaseError(resultCode: .SQLITE_CONSTRAINT_NOTNULL, message: "NOT NULL constraint failed: job.name"))
                == .invalid("the change breaks a rule of the database (NOT NULL constraint failed: job.name)"))
        #expect(map(CancellationError()) == .unavailable("the request was cancelled before \(path) answered"))
        #expect(map(StoreError.queueFull(limit: 3)) == .queueFull(limit: 3), "a StoreError passes as it is")
        if case .unavailable(let why) = map(DatabaseError(resultCode: .SQLITE_ERROR, message: "no such column: x")) {
            #expect(why.contains(path) && why.contains("no such column: x"))
        } else {
            Issue.record("a generic SQLite error is unavailable")
        }
    }
}
