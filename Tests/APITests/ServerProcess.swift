import ConfineTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Glibc
import Testing

/// A `confine serve` child process (the built binary) on a free loopback port with its own
/// database: for tests that measure the server alone (its memory), apart from the test runner
/// and the other tests' in-process servers. The process itself is the shared harness
/// (`ConfineServerProcess`); this adds the recorded HTTP exchanges of the API tests.
final class ServerProcess: @unchecked Sendable {
    let server: ConfineServerProcess
    var baseURL: String { server.url }
    /// The admin token the server wrote beside its database on its first start.
    var adminToken: String { server.adminToken }
    var folder: URL { server.folder }

    /// The built binary: beside the test bundle, else in the checkout's debug build.
    static let binary = ConfineServerProcess.binary(repository: LiveServer.repository)

    /// Whether the binary is there; says why not when it is not.
    static let available: Bool = {
        if FileManager.default.isExecutableFile(atPath: binary) { return true }
        print("SKIP tests of a confine serve process: \(binary) is not built (swift build --product confine)")
        return false
    }()

    init(policies: String, extraConfig: String = "") async throws {
        server = try await ConfineServerProcess(binary: Self.binary, policies: policies, extraConfig: "workers: 2\n" + extraConfig,
                                                label: "confine-process")
    }

    /// The server's pid.
    var pid: Int32 { server.pid }

    /// SIGTERM, a graceful wait of up to 15 s, then SIGKILL; removes the folder.
    func stop() { server.stop() }

    /// A figure of /proc/PID/status in bytes (`VmRSS`: resident now, `VmHWM`: the peak).
    func memory(_ key: String) -> Int { server.memory(key) }

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
}
