import API
import Credentials
import Domain
import Engine
import Foundation
import Hummingbird
import Logging
import Sandbox
import ServiceLifecycle
import Store
import Synchronization
import Testing
import ConfineTestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A real Confine server on a loopback port (port 0: the kernel picks), with its own database
/// and the repository's policies, and a real HTTP client (URLSession) talking to it. Every
/// exchange is appended to `$CONFINE_API_RECORD` (JSON lines) when set, so that `make test`
/// can check every response of the run against the OpenAPI document.
final class LiveServer: Sendable {
    let baseURL: String
    /// An admin token, sent by `call` unless told otherwise.
    let adminToken: String
    let engine: Engine
    let store: any ConfineStore
    let folder: URL
    /// The PostgreSQL database made for this server (dropped at stop), nil on SQLite.
    let postgresDatabase: String?

    /// The SQLite store, or nil when the suite runs on PostgreSQL (`CONFINE_TEST_STORE`).
    var sqlite: SQLiteStore? { store as? SQLiteStore }
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Starts a server, runs `body` against it, stops it (graceful: the engine's grace applies).
    static func with(_ tweak: (inout ServerConfiguration) -> Void = { _ in },
                     _ body: (LiveServer) async throws -> Void) async throws {
        let server = try await start(tweak)
        do {
            try await body(server)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    static func start(_ tweak: (inout ServerConfiguration) -> Void) async throws -> LiveServer {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("confine-api-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.database = folder.appendingPathComponent("confine.sqlite").path
        configuration.policies = repository.appendingPathComponent("policies").path
        configuration.engine.workers = 2
        configuration.engine.logger.logLevel = .warning
        configuration.engine.shutdownGrace = .milliseconds(500)
        configuration.engine.outputFlushInterval = .milliseconds(100)
        tweak(&configuration)
        let secrets = try SecretBox(key: Data((0..<32).map { _ in UInt8.random(in: 0...255) }))
        configuration.engine.openSecret = { try secrets.open($0) }
        let policies = try PolicySet.load(directory: configuration.policies)
        let store: any ConfineStore
        var postgresDatabase: String?
        if TestPostgres.apiTestsUsePostgres, configuration.database.hasSuffix("/confine.sqlite"),
           configuration.database.hasPrefix(folder.path) {
            let made = try await TestPostgres.createDatabase()
            postgresDatabase = made.name
            configuration.database = made.url
            // A small pool: dozens of these servers run at once against one test cluster.
            store = try await PostgresStore.open(try PostgresAddress(url: made.url), connectTimeout: .seconds(120),
                                                 operationTimeout: .seconds(60), maximumConnections: 8)
        } else {
            store = try SQLiteStore(path: configuration.database, reserveBytes: configuration.diskReserveBytes)
        }
        let adminToken = TokenMint.make()
        _ = try await store.createToken(NewAccessToken(name: "test-admin", role: .admin, tenant: "admin",
                                                       digest: TokenMint.digest(adminToken), createdAt: Date()))
        var sandboxConfiguration = configuration.sandbox
        sandboxConfiguration.warmPoolSize = 1
        let sandbox = try Sandbox(configuration: sandboxConfiguration)
        // A registry of its own, so that each test server's metrics can be asserted exactly.
        let metrics = ServerMetrics()
        let engine = Engine(store: store, sandbox: sandbox, policies: policies, configuration: configuration.engine,
                            metrics: metrics.engine)
        try await engine.start()
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "confine-test")
        logger.logLevel = .warning
        let app = APIServer(engine: engine, configuration: configuration, access: store, secrets: secrets,
                            metrics: metrics, logger: logger).application(logger: logger) { port in
            portContinuation.yield(port)
            portContinuation.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw TestFailure("the server did not start") }
        return LiveServer(baseURL: "http://127.0.0.1:\(port)", adminToken: adminToken, engine: engine, store: store,
                          folder: folder, postgresDatabase: postgresDatabase, group: group, task: task)
    }

    private init(baseURL: String, adminToken: String, engine: Engine, store: any ConfineStore, folder: URL,
                 postgresDatabase: String?, group: ServiceGroup, task: Task<Void, any Error>) {
        self.postgresDatabase = postgresDatabase
        self.baseURL = baseURL
        self.adminToken = adminToken
        self.engine = engine
        self.store = store
        self.folder = folder
        self.group = group
        self.task = task
    }

    /// The routes a server answers (method, template, role, switch), as the router has them.
    var routes: [(method: String, path: String, role: String?, switch: String?)] {
        APIServer(engine: engine, configuration: .init(), access: store, secrets: nil, metrics: ServerMetrics()).routes
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
        try? FileManager.default.removeItem(at: folder)
        if let postgres = store as? PostgresStore { postgres.close() }
        if let postgresDatabase { try? await TestPostgres.dropDatabase(postgresDatabase) }
    }

    // MARK: Client

    /// Who a request is sent as: the admin token (the default), another token, or no token.
    enum Credential: Sendable {
        case admin
        case token(String)
        case anonymous
    }

    /// One HTTP exchange. `json` is sent as the body with `Content-Type: application/json`.
    @discardableResult
    func call(_ method: String, _ path: String, json: String? = nil, body: Data? = nil,
              headers: [String: String] = [:], as credential: Credential = .admin,
              followRedirects: Bool = true) async throws -> HTTPAnswer {
        var request = URLRequest(url: URL(string: baseURL + path)!)
        request.httpMethod = method
        request.timeoutInterval = 60
        switch credential {
        case .admin: request.setValue("Bearer \(adminToken)", forHTTPHeaderField: "Authorization")
        case .token(let token): request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        case .anonymous: break
        }
        if let json {
            request.httpBody = Data(json.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        } else if let body {
            request.httpBody = body
        }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await (followRedirects ? URLSession.shared : NoRedirects.session).data(for: request)
        let http = response as! HTTPURLResponse
        var fields: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            fields[String(describing: name).lowercased()] = String(describing: value)
        }
        let answer = HTTPAnswer(status: http.statusCode, headers: fields, body: data)
        Recorder.shared.record(method: method, path: path, requestType: request.value(forHTTPHeaderField: "Content-Type"),
                               requestBody: request.httpBody, answer: answer)
        return answer
    }

    func get(_ path: String, as credential: Credential = .admin) async throws -> HTTPAnswer {
        try await call("GET", path, as: credential)
    }
    func post(_ path: String, _ json: String? = nil, as credential: Credential = .admin) async throws -> HTTPAnswer {
        try await call("POST", path, json: json, as: credential)
    }

    /// Makes a token through the API (`extra`: more members of the body, each starting with a
    /// comma) and returns its id and text.
    func token(_ name: String, role: String, extra: String = "") async throws -> (id: Int, token: String) {
        let answer = try await post("/tokens", #"{"name": \#(quote(name)), "role": \#(quote(role))\#(extra)}"#)
        try #require(answer.status == 201, "\(answer)")
        return (try #require(answer.object["id"] as? Int), try #require(answer.object["token"] as? String))
    }

    /// Creates a job and returns its id.
    func job(_ name: String, _ type: String = "bash", _ script: String, extra: String = "",
             as credential: Credential = .admin) async throws -> Int {
        let body = #"{"name": \#(quote(name)), "script_type": \#(quote(type)), "script_content": \#(quote(script))\#(extra)}"#
        let answer = try await post("/jobs", body, as: credential)
        try #require(answer.status == 200, "\(answer)")
        return try #require(answer.object["id"] as? Int)
    }

    /// Polls an execution until it is final.
    func waitFinal(_ id: Int, seconds: Double = 30, as credential: Credential = .admin) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let e = try await get("/executions/\(id)", as: credential).object
            if let status = e["status"] as? String, !["PENDING", "RUNNING"].contains(status) { return e }
            try await Task.sleep(for: .milliseconds(30))
        }
        throw TestFailure("execution \(id) did not finish in \(seconds) s")
    }
}

/// An HTTP answer as the client saw it.
struct HTTPAnswer: CustomStringConvertible {
    let status: Int
    let headers: [String: String]
    let body: Data

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: Any? { try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) }
    var object: [String: Any] { json as? [String: Any] ?? [:] }
    var array: [[String: Any]] { json as? [[String: Any]] ?? [] }
    var contentType: String { headers["content-type"] ?? "" }
    var description: String { "\(status) \(contentType) \(text.prefix(600))" }

    /// A problem+json answer with this status, whose detail mentions every fragment.
    func expectProblem(_ status: Int, field: String? = nil, _ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(self.status == status, "\(self)", sourceLocation: sourceLocation)
        #expect(contentType.hasPrefix("application/problem+json"), "\(self)", sourceLocation: sourceLocation)
        let o = object
        #expect(o["status"] as? Int == status, "\(self)", sourceLocation: sourceLocation)
        #expect((o["type"] as? String)?.hasPrefix("https://confine.dev/problems/") == true, "\(self)", sourceLocation: sourceLocation)
        #expect(o["title"] is String && o["instance"] is String, "\(self)", sourceLocation: sourceLocation)
        let detail = o["detail"] as? String ?? ""
        for fragment in fragments {
            #expect(detail.contains(fragment), "detail \"\(detail)\" lacks \"\(fragment)\"", sourceLocation: sourceLocation)
        }
        if let field { #expect(o["field"] as? String == field, "\(self)", sourceLocation: sourceLocation) }
    }
}

/// Appends every exchange to `$CONFINE_API_RECORD` as one JSON line.
final class Recorder: Sendable {
    static let shared = Recorder()
    private let lock = Mutex<FileHandle?>(nil)

    private init() {
        guard let path = ProcessInfo.processInfo.environment["CONFINE_API_RECORD"], !path.isEmpty else { return }
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        let handle = FileHandle(forWritingAtPath: path)
        handle?.seekToEndOfFile()
        lock.withLock { $0 = handle }
    }

    func record(method: String, path: String, requestType: String?, requestBody: Data?, answer: HTTPAnswer) {
        let line: [String: Any] = [
            "method": method, "path": path,
            "request_content_type": requestType as Any? ?? NSNull(),
            "request_body_base64": requestBody?.base64EncodedString() as Any? ?? NSNull(),
            "status": answer.status, "response_headers": answer.headers,
            "response_body_base64": answer.body.base64EncodedString(),
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]) else { return }
        lock.withLock { handle in
            handle?.write(data)
            handle?.write(Data("\n".utf8))
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A JSON string literal of `s`.
func quote(_ s: String) -> String {
    String(decoding: try! JSONSerialization.data(withJSONObject: s, options: [.fragmentsAllowed]), as: UTF8.self)
}

/// A URLSession that answers a redirect as it is (3xx and `Location`) instead of following it.
final class NoRedirects: NSObject, URLSessionTaskDelegate, Sendable {
    static let session = URLSession(configuration: .ephemeral, delegate: NoRedirects(), delegateQueue: nil)

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
        completionHandler(nil)
    }
}
