import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Glibc

/// A `confine serve` child process (the built binary) on a free loopback port, with its own
/// folder, configuration file and database: the server-process harness of the API and CLI
/// tests, written once. Started by `init` (it waits for `GET /health` and reads the admin token
/// the server writes on its first start), restarted on the same port and database, stopped
/// with SIGTERM (the server's graceful stop) and SIGKILL if it lingers.
public final class ConfineServerProcess: @unchecked Sendable {
    /// `http://127.0.0.1:PORT`.
    public let url: String
    /// The server's folder (configuration, database, log); removed by `stop()`.
    public let folder: URL
    /// The admin token the server wrote beside its database on its first start.
    public private(set) var adminToken = ""
    /// The configuration file.
    public let configFile: URL
    /// Where the server's stdout and stderr go.
    public let logFile: URL
    private let binary: String
    private let environment: [String: String]
    private var process = Process()
    /// Whether the database is shared with other servers (no admin.token may be made here).
    private let sharedDatabase: Bool

    /// The server's process id (for signals and /proc).
    public var pid: Int32 { process.processIdentifier }
    /// Whether the server process is alive.
    public var isRunning: Bool { process.isRunning }
    /// What the server wrote so far.
    public var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// The built `confine`: beside the test bundle, else in the checkout's debug build.
    public static func binary(repository: URL) -> String {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("confine").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        return repository.appendingPathComponent(".build/debug/confine").path
    }

    /// Writes the configuration (`listen`, `database`, `policies`, then `extraConfig`'s lines) in
    /// a new temporary folder named after `label`, starts the server and waits for it.
    /// `environment` is added to this process's own (CONFINE_SANDBOX_CPU_WEIGHT defaults to 100,
    /// as in `make test`).
    /// `database`: the `database:` to use instead of a SQLite file in the folder (a postgres://
    /// URL shared by several servers: then only the server that made the first token has an
    /// `admin.token`, and the others' `adminToken` is empty).
    public init(binary: String, policies: String, extraConfig: String = "", label: String = "confine-server",
                environment: [String: String] = [:], database: String? = nil) async throws {
        sharedDatabase = database != nil
        self.binary = binary
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let port = try Self.freePort()
        url = "http://127.0.0.1:\(port)"
        configFile = folder.appendingPathComponent("confine.yaml")
        try """
            listen: 127.0.0.1:\(port)
            database: \(database.map { "\"\($0)\"" } ?? folder.path + "/confine.sqlite")
            policies: \(policies)
            \(extraConfig)
            """.write(to: configFile, atomically: true, encoding: .utf8)
        logFile = folder.appendingPathComponent("server.log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        var merged = ProcessInfo.processInfo.environment
        merged["CONFINE_SANDBOX_CPU_WEIGHT"] = merged["CONFINE_SANDBOX_CPU_WEIGHT"] ?? "100"
        merged.merge(environment) { _, given in given }
        self.environment = merged
        try await launch()
    }

    deinit { stop() }

    /// `confine serve --config CONFIG` in `folder`, its stdout and stderr into `log`, stdin
    /// empty; not started yet. `environment`: the whole environment (nil: this process's).
    public static func serveProcess(binary: String, config: URL, folder: URL, log: FileHandle,
                                    environment: [String: String]? = nil) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--config", config.path]
        process.currentDirectoryURL = folder
        process.environment = environment
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        return process
    }

    /// Starts `confine serve --config FILE` in the folder and waits (30 s at most) for GET /health.
    private func launch() async throws {
        let handle = try FileHandle(forWritingTo: logFile)
        handle.seekToEndOfFile()
        process = Self.serveProcess(binary: binary, config: configFile, folder: folder, log: handle, environment: environment)
        try ProcessLaunch.run(process)
        let deadline = Date().addingTimeInterval(30)
        while true {
            if await Self.healthy(url) {
                let tokenFile = folder.appendingPathComponent("var/admin.token")
                let file = sharedDatabase ? tokenFile : folder.appendingPathComponent("admin.token")
                if sharedDatabase, !FileManager.default.fileExists(atPath: file.path) { return }
                adminToken = try String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                return
            }
            guard process.isRunning else {
                throw ServerProcessError("confine serve exited with status \(process.terminationStatus):\n\(log)")
            }
            guard Date() < deadline else {
                stop()
                throw ServerProcessError("confine serve did not answer GET /health within 30s:\n\(log)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Stops the server gracefully (running executions get its grace) and starts it again on
    /// the same port and database.
    public func restart() async throws {
        terminate()
        try await launch()
    }

    /// SIGTERM, a graceful wait of up to `grace`, then SIGKILL.
    private func terminate(grace: TimeInterval = 15) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// SIGTERM (a graceful stop), waiting up to `grace` for the exit (then SIGKILL); the
    /// folder stays, so the log can be read. Returns the exit status (a signal's number for a
    /// process killed by it).
    @discardableResult
    public func stopGracefully(grace: TimeInterval = 15) -> Int32 {
        terminate(grace: grace)
        return process.terminationStatus
    }

    /// SIGKILL at once (a node lost mid-work), waiting for the exit; the folder stays.
    public func killHard() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Stops the server (SIGTERM, then SIGKILL after 15 s) and removes its folder.
    public func stop() {
        terminate()
        try? FileManager.default.removeItem(at: folder)
    }

    /// A figure of /proc/PID/status in bytes (`VmRSS`: resident now, `VmHWM`: the peak); 0 when
    /// it cannot be read.
    public func memory(_ key: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }),
              let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kb * 1024
    }

    /// Whether `GET url/health` answers 200 `ok` within 2 s.
    public static func healthy(_ url: String) async -> Bool {
        var request = URLRequest(url: URL(string: url + "/health")!, timeoutInterval: 2)
        request.httpMethod = "GET"
        guard let (data, response) = try? await URLSession.shared.data(for: request) else { return false }
        return (response as? HTTPURLResponse)?.statusCode == 200 && String(decoding: data, as: UTF8.self).contains("ok")
    }

    /// A loopback port nothing listens on right now (bound to port 0, then released).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ServerProcessError("socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw ServerProcessError("bind: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Why a server process could not be started or reached, with what it wrote.
public struct ServerProcessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
