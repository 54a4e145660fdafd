import Foundation
import Glibc

/// A PostgreSQL cluster of one test's own, which the test may stop and start (an outage)
/// without touching the cluster the other tests share: `initdb` in a new temporary folder as
/// the `postgres` user (initdb refuses root), a unix socket in that folder and no TCP listener,
/// as `scripts/with-postgres.sh` makes the shared one. The user `confine` logs in without a
/// password (trust); every other user needs its password (scram-sha-256), so a test can be
/// refused a login. Removed by `remove()` (stopped first).
public final class ThrowawayPostgres: @unchecked Sendable {
    /// The folder of the data directory, the socket and the server's log.
    public let folder: String
    /// The port number naming the socket file (`.s.PGSQL.PORT`).
    public let port = 5432
    /// The user allowed in with a password only, and its password.
    public static let guardedUser = "guarded", guardedPassword = "right-password"
    private let bin: String
    private let owner: String

    /// `postgres://confine@localhost:PORT/confine?host=FOLDER`: the database `confine`, trusted.
    public var url: String { "postgres://confine@localhost:\(port)/confine?host=\(folder)" }

    /// `url` as `user`:`password`.
    public func url(user: String, password: String) -> String {
        "postgres://\(user):\(password)@localhost:\(port)/confine?host=\(folder)"
    }

    /// Why a throwaway cluster cannot be made here (PostgreSQL's server not installed, not
    /// root), or nil when it can.
    public static var unavailableReason: String? {
        guard getuid() == 0 else { return "a throwaway PostgreSQL cluster is made as the postgres user, which needs root" }
        guard serverBinaries() != nil else {
            return "PostgreSQL's server (initdb, pg_ctl) is not installed (make test installs Debian's postgresql)"
        }
        guard getpwnam("postgres") != nil else { return "there is no postgres user (Debian's postgresql package makes it)" }
        return nil
    }

    /// The newest installed `/usr/lib/postgresql/N/bin` with initdb and pg_ctl.
    static func serverBinaries() -> String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted(by: >)
        return versions.map { "\(root)/\($0)/bin" }.first {
            FileManager.default.isExecutableFile(atPath: "\($0)/initdb") && FileManager.default.isExecutableFile(atPath: "\($0)/pg_ctl")
        }
    }

    /// Makes the cluster (initdb, the users, the authentication rules) and starts it; nil, with
    /// the reason printed as a SKIP line for `what`, when it cannot be made here.
    public static func make(_ what: String = #function) async throws -> ThrowawayPostgres? {
        if let reason = unavailableReason {
            print("SKIP \(what): \(reason)")
            return nil
        }
        let bin = serverBinaries()!
        return try await offPool { try ThrowawayPostgres(bin: bin) }
    }

    /// Runs `body` on a thread of its own: it waits for child processes (initdb and pg_ctl take
    /// seconds), and a wait on one of the few threads Swift's concurrency runs every test on
    /// would stall all the others meanwhile (seen: trivial tests taking 10 s and CPU burners
    /// starved past their wall limit while clusters were made).
    private static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    private init(bin: String) throws {
        self.bin = bin
        owner = "postgres"
        var template = Array("/tmp/confine-pgt.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestPostgresError(message: "mkdtemp: errno \(errno)") }
        folder = String(cString: made)
        let user = getpwnam(owner)!.pointee
        guard chown(folder, user.pw_uid, user.pw_gid) == 0, chmod(folder, 0o755) == 0 else {
            throw TestPostgresError(message: "chown/chmod \(folder): errno \(errno)")
        }
        do {
            try runAsOwner("\(bin)/initdb", ["-D", "\(folder)/data", "-U", "confine", "--auth=trust", "-E", "UTF8", "--no-locale"])
            try """
                local all confine trust
                local all all scram-sha-256
                """.write(toFile: "\(folder)/data/pg_hba.conf", atomically: false, encoding: .utf8)
            try startNow()
            try psql("CREATE ROLE \(Self.guardedUser) LOGIN PASSWORD '\(Self.guardedPassword)'", database: "postgres")
            try psql("CREATE DATABASE confine", database: "postgres")
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    /// Starts the server and waits until it takes connections.
    public func start() async throws { try await Self.offPool { try self.startNow() } }

    private func startNow() throws {
        try runAsOwner("\(bin)/pg_ctl", [
            "-D", "\(folder)/data", "-l", "\(folder)/server.log", "-w", "-t", "60", "-o",
            "-k \(folder) -p \(port) -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            "start",
        ])
    }

    /// Stops the server the way an operator's restart does (`pg_ctl stop -m fast`: every
    /// session is ended, the socket removed) and waits until it is down.
    public func stop() async throws {
        try await Self.offPool { try self.runAsOwner("\(self.bin)/pg_ctl", ["-D", "\(self.folder)/data", "-m", "fast", "-w", "-t", "60", "stop"]) }
    }

    /// Stops the server (immediately) and removes the folder; safe to call more than once.
    public func remove() {
        guard FileManager.default.fileExists(atPath: folder) else { return }
        try? runAsOwner("\(bin)/pg_ctl", ["-D", "\(folder)/data", "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// One statement as `confine` (trusted) with psql; its output (unaligned, tuples only).
    @discardableResult
    public func psql(_ statement: String, database: String = "confine") throws -> String {
        try run("\(bin)/psql", ["-h", folder, "-p", String(port), "-U", "confine", "-d", database, "-qAt", "-c", statement])
    }

    /// The server's log so far.
    public var serverLog: String { (try? String(contentsOfFile: "\(folder)/server.log", encoding: .utf8)) ?? "" }

    /// Runs `program` as the cluster's owner. Through Python's `subprocess`, which closes every
    /// descriptor but the standard three in the child: Foundation's `Process` learns that a
    /// child ended when a socket it handed down is closed, and the server `pg_ctl start`
    /// leaves running would otherwise hold that socket (and the other tests' ones) for its life.
    private func runAsOwner(_ program: String, _ arguments: [String]) throws {
        try run("/usr/bin/python3", ["-c", "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))",
                                     "/usr/sbin/runuser", "-u", owner, "--", program] + arguments)
    }

    /// Runs a program to its end; its standard output, or an error with everything it said.
    /// Output goes through a file, not a pipe: `pg_ctl start` leaves the server running, and a
    /// pipe the server inherited would never end.
    @discardableResult
    private func run(_ program: String, _ arguments: [String]) throws -> String {
        let capture = FileManager.default.temporaryDirectory.appendingPathComponent("confine-pgt-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: capture.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: capture) }
        let handle = try FileHandle(forWritingTo: capture)
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: "/")
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try ProcessLaunch.run(process)
        process.waitUntilExit()
        let said = (try? String(contentsOf: capture, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            throw TestPostgresError(message: """
                \(([program] + arguments).joined(separator: " ")) exited with status \(process.terminationStatus): \(said)
                """)
        }
        return said
    }
}
