import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Glibc
import Testing

/// A `confine serve` child process (the built binary) on a free loopback port with its own
/// database: for tests that measure the server alone (its memory), apart from the test runner
/// and the other tests' in-process servers. Stopped with SIGTERM (the server handles it
/// itself), then SIGKILL if it lingers.
final class ServerProcess: @unchecked Sendable {
    let baseURL: String
    /// The admin token the server wrote beside its database on its first start.
    private(set) var adminToken = ""
    let folder: URL
    private let process = Process()

    /// The built binary: beside the test bundle, else in the checkout's debug build.
    static let binary: String = {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("confine").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        return LiveServer.repository.appendingPathComponent(".build/debug/confine").path
    }()

    /// Whether the binary is there; says why not when it is not.
    static let available: Bool = {
        if FileManager.default.isExecutableFile(atPath: binary) { return true }
        print("SKIP tests of a confine serve process: \(binary) is not built (swift build --product confine)")
        return false
    }()

    init(policies: String, extraConfig: String = "") async throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("confine-process-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let port = try Self.freePort()
        baseURL = "http://127.0.0.1:\(port)"
        let config = folder.appendingPathComponent("confine.yaml")
        try """
            listen: 127.0.0.1:\(port)
            database: \(folder.path)/confine.sqlite
            policies: \(policies)
            workers: 2
            \(extraConfig)
            """.write(to: config, atomically: true, encoding: .utf8)
        let log = folder.appendingPathComponent("server.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        var environment = ProcessInfo.processInfo.environment
        environment["CONFINE_SANDBOX_CPU_WEIGHT"] = environment["CONFINE_SANDBOX_CPU_WEIGHT"] ?? "100"
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve", "--config", config.path]
        process.environment = environment
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while true {
            if let health = try? await call("GET", "/health", record: false), health.status == 200 {
                adminToken = try String(contentsOf: folder.appendingPathComponent("admin.token"), encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                return
            }
            guard process.isRunning, Date() < deadline else {
                stop()
                throw TestFailure("confine serve did not answer GET /health: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    deinit { stop() }

    /// The server's pid.
    var pid: Int32 { process.processIdentifier }

    /// SIGTERM, a graceful wait of up to 15 s, then SIGKILL; removes the folder.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(15)
            while process.isRunning, Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: folder)
    }

    /// A figure of /proc/PID/status in bytes (`VmRSS`: resident now, `VmHWM`: the peak).
    func memory(_ key: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }),
              let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kb * 1024
    }

    /// One HTTP exchange (recorded for the conformance check like `LiveServer.call`).
    @discardableResult
    func call(_ method: String, _ path: String, json: String? = nil, record: Bool = true) async throws -> HTTPAnswer {
        var request = URLRequest(url: URL(string: baseURL + path)!)
        request.httpMethod = method
        request.timeoutInterval = 60
        if !adminToken.isEmpty { request.setValue("Bearer \(adminToken)", forHTTPHeaderField: "Authorization") }
        if let json {
            request.httpBody = Data(json.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var fields: [String: String] = [:]
        for (name, value) in http.allHeaderFields { fields[String(describing: name).lowercased()] = String(describing: value) }
        let answer = HTTPAnswer(status: http.statusCode, headers: fields, body: data)
        if record {
            Recorder.shared.record(method: method, path: path, requestType: json == nil ? nil : "application/json",
                                   requestBody: request.httpBody, answer: answer)
        }
        return answer
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw TestFailure("bind: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
