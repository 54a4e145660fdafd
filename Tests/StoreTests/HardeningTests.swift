import Domain
import Foundation
import GRDB
@testable import Store
import Testing

/// Fair shares of the workers between tenants, and files at rest private whatever the umask.
@Suite("Store hardening: fair claims, private files")
struct StoreHardeningTests {
    func job(_ store: any ExecutionStore, tenant: String) async throws -> Job {
        try await store.createJob(NewJob(name: "job-\(UUID().uuidString.prefix(8))", scriptType: .bash, scriptContent: "true",
                                         policy: "default", concurrency: .allow, tenant: tenant))
    }

    @Test("At one priority, the tenant with the fewest running executions goes next: a thousand queued of one tenant do not stall another's single one", arguments: StoreKind.allCases)
    func fairAcrossTenants(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let flood = try await job(store, tenant: "flood")
            let quiet = try await job(store, tenant: "quiet")
            var floodIDs: [Int64] = []
            for _ in 0..<50 { floodIDs.append(try await store.enqueue(flood).id) }
            let single = try await store.enqueue(quiet)
            // The first claim: both tenants have nothing running; the oldest head is flood's.
            let first = try #require(try await store.claim("w1"))
            #expect(first.id == floodIDs[0])
            // The next: flood has one running, quiet none: quiet's single execution, though 49 older wait.
            let second = try #require(try await store.claim("w2"))
            #expect(second.id == single.id, "claimed \(second.id), expected quiet's \(single.id)")
            // Then flood's, oldest first.
            let third = try #require(try await store.claim("w3"))
            #expect(third.id == floodIDs[1])
            // A higher priority still comes first, whoever has more running.
            let urgent = try await store.enqueue(flood, priority: 5)
            #expect(try await store.claim("w4")?.id == urgent.id)
        }
    }

    @Test("Two tenants with work queued alternate on the workers as executions finish", arguments: StoreKind.allCases)
    func alternate(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let a = try await job(store, tenant: "a"), b = try await job(store, tenant: "b")
            for _ in 0..<10 { _ = try await store.enqueue(a) }
            for _ in 0..<10 { _ = try await store.enqueue(b) }
            // Two workers serve both tenants, though a's ten are all older than b's.
            let x = try #require(try await store.claim("x")), y = try #require(try await store.claim("y"))
            #expect(x.tenant == "a" && y.tenant == "b", "\(x.tenant ?? "") \(y.tenant ?? "")")
            // When a's run ends, a (none running) goes before b (one running).
            try await store.finish(x.id)
            #expect(try await store.claim("x")?.tenant == "a")
            try await store.finish(y.id)
            #expect(try await store.claim("y")?.tenant == "b")
        }
    }

    @Test("The database, its -wal and -shm, and the token sentinel are 0600 in a 0700 folder, even under umask 000")
    func privateFiles() async throws {
        try await withTemporaryFolder { folder in
            let path = folder.appendingPathComponent("sub/confine.sqlite").path
            let old = umask(0)
            defer { umask(old) }
            let store = try SQLiteStore(path: path)
            _ = try await store.createToken(NewAccessToken(name: "t", role: .viewer, tenant: "t", digest: Data([1]), createdAt: Date()))
            _ = try await store.makeJob()
            func mode(_ p: String) -> mode_t? {
                var info = stat()
                return stat(p, &info) == 0 ? info.st_mode & 0o777 : nil
            }
            #expect(mode(folder.appendingPathComponent("sub").path) == 0o700)
            #expect(mode(path) == 0o600)
            #expect(mode(path + "-wal") == 0o600)
            #expect(mode(path + "-shm") == 0o600)
            let sentinel = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("sub").path)
                .filter { $0.hasSuffix("-tokens") }
            #expect(!sentinel.isEmpty)
            for name in sentinel { #expect(mode(folder.appendingPathComponent("sub/\(name)").path) == 0o600, "\(name)") }
        }
    }

    @Test("An older database file readable by others is narrowed to 0600 when opened")
    func narrowsOldFile() async throws {
        try await withTemporaryFolder { folder in
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let path = folder.appendingPathComponent("confine.sqlite").path
            _ = try SQLiteStore(path: path)
            chmod(path, 0o644)
            _ = try SQLiteStore(path: path)
            var info = stat()
            #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        }
    }

    @Test("An existing folder open to others is narrowed to 0700 when it holds only Confine's files; a shared one is left, and the store says why")
    func narrowsOwnFolderOnly() async throws {
        func mode(_ p: String) -> mode_t? {
            var info = stat()
            return stat(p, &info) == 0 ? info.st_mode & 0o7777 : nil
        }
        try await withTemporaryFolder { folder in
            let own = folder.appendingPathComponent("own").path, shared = folder.appendingPathComponent("shared").path
            let sticky = folder.appendingPathComponent("sticky").path
            for dir in [own, shared, sticky] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            // Confine's own folder, made 0755 by an older version or a umask.
            _ = try SQLiteStore(path: own + "/confine.sqlite")
            FileManager.default.createFile(atPath: own + "/admin.token", contents: Data())
            chmod(own, 0o755)
            let reopened = try SQLiteStore(path: own + "/confine.sqlite")
            #expect(mode(own) == 0o700)
            #expect(reopened.folderNote == nil)

            // A folder shared with something else keeps its mode; the store says which and why.
            FileManager.default.createFile(atPath: shared + "/other-service.conf", contents: Data())
            chmod(shared, 0o755)
            let inShared = try SQLiteStore(path: shared + "/confine.sqlite")
            #expect(mode(shared) == 0o755)
            let note = try #require(inShared.folderNote)
            #expect(note.contains(shared) && note.contains("other-service.conf") && note.contains("0600"), "\(note)")
            #expect(mode(shared + "/confine.sqlite") == 0o600)

            // A sticky shared folder (as /tmp) is never narrowed, even when it holds only the database.
            chmod(sticky, 0o1777)
            let inSticky = try SQLiteStore(path: sticky + "/confine.sqlite")
            #expect(mode(sticky) == 0o1777)
            #expect(inSticky.folderNote?.contains("sticky") == true)
        }
    }
}
