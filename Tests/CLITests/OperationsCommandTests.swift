import Foundation
import Glibc
import Testing

/// `confine doctor` on this host, and `confine backup` of a live server's database: counts,
/// integrity, refusals, and a copy taken while another connection holds a write transaction.
@Suite("confine doctor and backup")
struct OperationsCommandTests {
    func folder() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("confine-ops-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The doctor's text line for a check: "ok       cgroups          v1, …".
    static func line(_ output: String, _ name: String) -> String? {
        output.split(separator: "\n").map(String.init).first {
            $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().joined(separator: " ").hasPrefix(name + " ")
        }
    }

    // MARK: doctor

    @Test("doctor on this host: exit 0; user namespaces, cgroups (v1), seccomp, python and bash are ok",
          .enabled(if: CLITests.canSandbox))
    func doctorHost() throws {
        let o = try CLITests.confine(["doctor"])
        #expect(o.status == 0, "\(o.stdout)\(o.stderr)")
        for name in ["kernel", "privileges", "user namespaces", "cgroups", "cgroup parent", "spawner", "seccomp", "policies",
                     "runtime bash", "runtime python", "database"] {
            let line = Self.line(o.stdout, name)
            #expect(line?.hasPrefix("ok ") == true, "\(name): \(line ?? "no line")\n\(o.stdout)")
        }
        let mountsV1 = ((try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? "").contains(" - cgroup cgroup ")
        if mountsV1 { #expect(Self.line(o.stdout, "cgroups")?.contains("v1") == true, "\(o.stdout)") }
        #expect(Self.line(o.stdout, "runtime python")?.contains("ran in a sandbox in") == true, "\(o.stdout)")
        #expect(Self.line(o.stdout, "runtime bash")?.contains("/bin/bash") == true, "\(o.stdout)")
        #expect(!o.stdout.contains("MISSING"), "\(o.stdout)")
    }

    @Test("doctor without the spawner executable: exit 1, MISSING spawner naming the path and the fix",
          .enabled(if: CLITests.canSandbox))
    func doctorWithoutSpawner() throws {
        let o = try CLITests.confine(["doctor"], environment: ["CONFINE_SPAWNER": "/nonexistent/confine-spawner"])
        #expect(o.status == 1, "\(o.stdout)\(o.stderr)")
        let line = Self.line(o.stdout, "spawner") ?? ""
        #expect(line.hasPrefix("MISSING") && line.contains("/nonexistent/confine-spawner"), "\(o.stdout)")
    }

    @Test("doctor --json: one object, every check with name, status, detail and fix", .enabled(if: CLITests.canSandbox))
    func doctorJSON() throws {
        let o = try CLITests.confine(["doctor", "--json"])
        #expect(o.status == 0, "\(o.stdout)\(o.stderr)")
        let j = try CLITests.json(o.stdout)
        #expect(j["ok"] as? Bool == true)
        let checks = try #require(j["checks"] as? [[String: Any]])
        #expect(checks.count >= 10)
        for check in checks {
            #expect(Set(check.keys) == ["name", "status", "detail", "fix"], "\(check)")
            #expect(["ok", "missing", "warn"].contains(check["status"] as? String ?? ""), "\(check)")
        }
        #expect(checks.contains { $0["name"] as? String == "user namespaces" && $0["status"] as? String == "ok" })
    }

    @Test("doctor with a broken policies folder: exit 1, MISSING naming the file and the fix")
    func doctorBrokenPolicies() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/policies", withIntermediateDirectories: true)
        try "limits:\n  memroy: 1MiB\n".write(toFile: dir + "/policies/default.yaml", atomically: true, encoding: .utf8)
        try "policies: \(dir)/policies\ndatabase: \(dir)/db/confine.sqlite\n".write(toFile: dir + "/confine.yaml", atomically: true, encoding: .utf8)
        let o = try CLITests.confine(["doctor", "--config", dir + "/confine.yaml"])
        #expect(o.status == 1, "\(o.stdout)\(o.stderr)")
        let line = try #require(Self.line(o.stdout, "policies"), "\(o.stdout)")
        #expect(line.hasPrefix("MISSING "), "\(line)")
        #expect(line.contains(dir + "/policies/default.yaml"), "\(line)")
        #expect(line.contains("memroy"), "\(line)")
        #expect(line.contains("fix: "), "\(line)")
        #expect(Self.line(o.stdout, "database")?.hasPrefix("ok ") == true, "\(o.stdout)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/db"), "doctor must not create the database folder")
    }

    // MARK: backup

    @Test("backup of a serving database: same counts, integrity ok, a copy that opens on its own",
          .enabled(if: ClientVerbTests.hasServe && CLITests.canSandbox))
    func backupLive() async throws {
        let server = try await ClientVerbTests.Server()
        defer { server.stop() }
        let script = try server.file("hello.sh", "echo hello\n")
        #expect(try server.confine(["job", "create", "hello", "--type", "bash", "--file", script]).status == 0)
        #expect(try server.confine(["exec", "run", "hello", "--wait"]).status == 0)
        let database = server.dir.appendingPathComponent("confine.sqlite").path
        let copy = server.dir.appendingPathComponent("copy.sqlite").path

        let o = try CLITests.confine(["backup", copy, "--config", server.dir.appendingPathComponent("confine.yaml").path])
        #expect(o.status == 0, "\(o.stdout)\(o.stderr)")
        #expect(o.stdout.hasPrefix("backup: \(database) -> \(copy) (1 jobs, 1 executions, "), "\(o.stdout)")
        #expect(o.stdout.hasSuffix(" MiB, integrity ok)\n"), "\(o.stdout)")

        // The copy is one self-contained file, opened here by another SQLite connection.
        #expect(!FileManager.default.fileExists(atPath: copy + "-wal"))
        let db = try SQLite(copy)
        #expect(try db.text("PRAGMA integrity_check") == "ok")
        #expect(try db.text("PRAGMA journal_mode") == "delete")
        #expect(try db.int("SELECT COUNT(*) FROM job") == 1)
        #expect(try db.int("SELECT COUNT(*) FROM execution") == 1)
        #expect(try db.text("SELECT name FROM job") == "hello")
        #expect(try db.text("SELECT status FROM execution") == "SUCCESS")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: server.dir.path).filter { $0.contains(".partial-") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test("backup while another connection holds a write transaction open: online, the committed snapshot",
          .enabled(if: ClientVerbTests.hasServe && CLITests.canSandbox))
    func backupDuringWrite() async throws {
        let server = try await ClientVerbTests.Server()
        defer { server.stop() }
        let script = try server.file("hello.sh", "echo hello\n")
        #expect(try server.confine(["job", "create", "hello", "--type", "bash", "--file", script]).status == 0)
        #expect(try server.confine(["exec", "run", "hello", "--wait"]).status == 0)
        let database = server.dir.appendingPathComponent("confine.sqlite").path
        let copy = server.dir.appendingPathComponent("during-write.sqlite").path

        let writer = try SQLite(database)
        try writer.exec("BEGIN IMMEDIATE")
        try writer.exec("DELETE FROM execution")
        let started = Date()
        let o = try CLITests.confine(["backup", copy, "--database", database])
        let elapsed = Date().timeIntervalSince(started)
        try writer.exec("ROLLBACK")
        #expect(o.status == 0, "\(o.stdout)\(o.stderr)")
        #expect(o.stdout.contains("(1 jobs, 1 executions, "), "\(o.stdout)")
        #expect(elapsed < 5, "the backup waited for the writer: \(elapsed) s")
        #expect(try SQLite(copy).int("SELECT COUNT(*) FROM execution") == 1)
    }

    @Test("backup refuses an existing target without --force, and replaces it with --force")
    func backupExistingTarget() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let database = dir + "/confine.sqlite"
        try Self.makeDatabase(database)
        let target = dir + "/exists.sqlite"
        try "precious".write(toFile: target, atomically: true, encoding: .utf8)

        let refused = try CLITests.confine(["backup", target, "--database", database])
        #expect(refused.status == 64, "\(refused.stderr)")
        #expect(refused.stderr == "confine: \(target) already exists; pass --force to replace it\n", "\(refused.stderr)")
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "precious")

        let same = try CLITests.confine(["backup", database, "--database", database, "--force"])
        #expect(same.status == 64, "\(same.stderr)")
        #expect(same.stderr.contains("is the database itself"), "\(same.stderr)")

        let forced = try CLITests.confine(["backup", target, "--database", database, "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(forced.stdout.contains("(2 jobs, 0 executions, "), "\(forced.stdout)")
        #expect(try SQLite(target).int("SELECT COUNT(*) FROM job") == 2)
    }

    @Test("backup of a missing database: exit 74 naming the path and errno, and nothing is created")
    func backupMissingSource() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let missing = dir + "/none/confine.sqlite"
        let o = try CLITests.confine(["backup", dir + "/copy.sqlite", "--database", missing])
        #expect(o.status == 74, "\(o.stderr)")
        #expect(o.stderr.hasPrefix("confine: database \(missing): ENOENT (No such file or directory)"), "\(o.stderr)")
        #expect(o.stderr.split(separator: "\n").count == 1, "\(o.stderr)")
        #expect(!FileManager.default.fileExists(atPath: missing))
        #expect(!FileManager.default.fileExists(atPath: dir + "/none"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)

        // A file that is not a Confine database is refused too, and left as it was.
        try "just text".write(toFile: dir + "/text.sqlite", atomically: true, encoding: .utf8)
        let text = try CLITests.confine(["backup", dir + "/copy.sqlite", "--database", dir + "/text.sqlite"])
        #expect(text.status == 74, "\(text.stderr)")
        #expect(text.stderr.contains(dir + "/text.sqlite"), "\(text.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["text.sqlite"])

        let usage = try CLITests.confine(["backup"])
        #expect(usage.status == 64, "\(usage.stderr)")
    }

    /// A small database with the two tables a Confine database has, without a server.
    static func makeDatabase(_ path: String) throws {
        let db = try SQLite(path, create: true)
        try db.exec("PRAGMA journal_mode = WAL")
        try db.exec("CREATE TABLE job (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        try db.exec("CREATE TABLE execution (id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL REFERENCES job(id))")
        try db.exec("INSERT INTO job (name) VALUES ('one'), ('two')")
    }
}

/// A bare connection to the system's libsqlite3 (loaded at run time: this test target does not
/// link GRDB), to look at copies and to hold a write transaction open from a second connection.
final class SQLite {
    private typealias Open = @convention(c) (UnsafePointer<CChar>, UnsafeMutablePointer<OpaquePointer?>, Int32, UnsafePointer<CChar>?) -> Int32
    private typealias Exec = @convention(c) (OpaquePointer, UnsafePointer<CChar>, OpaquePointer?, OpaquePointer?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32
    private typealias Prepare = @convention(c) (OpaquePointer, UnsafePointer<CChar>, Int32, UnsafeMutablePointer<OpaquePointer?>, OpaquePointer?) -> Int32
    private typealias Step = @convention(c) (OpaquePointer) -> Int32
    private typealias ColumnText = @convention(c) (OpaquePointer, Int32) -> UnsafePointer<UInt8>?
    private typealias Close = @convention(c) (OpaquePointer) -> Int32
    private typealias ErrorMessage = @convention(c) (OpaquePointer) -> UnsafePointer<CChar>

    struct Failure: Error, CustomStringConvertible { var description: String }

    private nonisolated(unsafe) static let library: UnsafeMutableRawPointer? = dlopen("libsqlite3.so.0", RTLD_NOW)
    private static func symbol<T>(_ name: String, _ type: T.Type) throws -> T {
        guard let library, let pointer = dlsym(library, name) else { throw Failure(description: "libsqlite3.so.0: no \(name)") }
        return unsafeBitCast(pointer, to: type)
    }

    private let db: OpaquePointer
    let path: String

    init(_ path: String, create: Bool = false) throws {
        self.path = path
        var handle: OpaquePointer?
        // SQLITE_OPEN_READWRITE (2), | SQLITE_OPEN_CREATE (4) when asked.
        let rc = try Self.symbol("sqlite3_open_v2", Open.self)(path, &handle, create ? 6 : 2, nil)
        guard rc == 0, let handle else { throw Failure(description: "sqlite3_open_v2 \(path): \(rc)") }
        db = handle
        _ = try exec("PRAGMA busy_timeout = 5000")
    }

    deinit { _ = try? Self.symbol("sqlite3_close_v2", Close.self)(db) }

    private func failure(_ sql: String) -> Failure {
        let message = (try? Self.symbol("sqlite3_errmsg", ErrorMessage.self)).map { String(cString: $0(db)) } ?? "?"
        return Failure(description: "\(path): \(sql): \(message)")
    }

    func exec(_ sql: String) throws {
        guard try Self.symbol("sqlite3_exec", Exec.self)(db, sql, nil, nil, nil) == 0 else { throw failure(sql) }
    }

    /// The first column of the first row, as text.
    func text(_ sql: String) throws -> String? {
        var statement: OpaquePointer?
        guard try Self.symbol("sqlite3_prepare_v2", Prepare.self)(db, sql, -1, &statement, nil) == 0, let statement else {
            throw failure(sql)
        }
        defer { _ = try? Self.symbol("sqlite3_finalize", Step.self)(statement) }
        let rc = try Self.symbol("sqlite3_step", Step.self)(statement)
        guard rc == 100 else {  // SQLITE_ROW
            if rc == 101 { return nil }  // SQLITE_DONE
            throw failure(sql)
        }
        return try Self.symbol("sqlite3_column_text", ColumnText.self)(statement, 0).map { String(cString: $0) }
    }

    func int(_ sql: String) throws -> Int? { try text(sql).flatMap { Int($0) } }
}
