import Domain
import Engine
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Sandbox
import ServiceLifecycle
import Store

/// The HTTP face of Confine: every route of `openapi.yaml` on a Hummingbird 2 router, errors as
/// problem+json, the OpenAPI document and its docs page. It holds no state of its own: jobs
/// and executions live in the store, runs in the engine.
public struct APIServer: Sendable {
    public let engine: Engine
    public let configuration: ServerConfiguration

    public init(engine: Engine, configuration: ServerConfiguration) {
        self.engine = engine
        self.configuration = configuration
    }

    var store: any ExecutionStore { engine.store }

    /// The router with every route.
    public func router() -> Router<BasicRequestContext> { routerAndTable().router }

    /// Every route answered, as (method, OpenAPI path template): what tests compare with the
    /// OpenAPI document.
    public var routes: [(method: String, path: String)] {
        routerAndTable().table.all.map { ($0.method.rawValue, $0.template) }
    }

    func routerAndTable() -> (router: Router<BasicRequestContext>, table: RouteTable) {
        let router = Router(context: BasicRequestContext.self)
        let table = RouteTable(router: router)
        // Added first, so that it wraps every route registered after it (and the not-found one).
        router.add(middleware: ProblemMiddleware(table: table))
        JobRoutes(server: self).register(table)
        ExecutionRoutes(server: self).register(table)
        MetaRoutes(server: self).register(table)
        return (router, table)
    }

    /// An application serving `router()` on the configured address, with the connection
    /// timeouts of the configuration (`idle_timeout`, `request_timeout`). `onBound` learns the
    /// port (useful with port 0).
    public func application(logger: Logger, onBound: (@Sendable (Int) -> Void)? = nil)
        -> some ApplicationProtocol {
        let requestTimeout = TimeAmount(configuration.requestTimeout)
        var app = Application(
            router: router(),
            server: .http1(configuration: .init(
                additionalChannelHandlers: [RequestDeadlineHandler(timeout: requestTimeout)],
                idleTimeout: TimeAmount(configuration.idleTimeout))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Confine"),
            onServerRunning: { channel in
                if let port = channel.localAddress?.port { onBound?(port) }
            },
            logger: logger)
        app.addServices(EngineService(engine: engine))
        return app
    }

    // MARK: Shared by the routes

    /// The request body, at most `max_body_size` bytes (413 beyond). A body sent with another
    /// content type than JSON is still read as JSON (`curl -d` sends form encoding), and
    /// refused with 415 only when it is not JSON.
    func body(_ request: Request) async throws -> (bytes: [UInt8], declaredType: String?) {
        var request = request
        let buffer = try await collect(&request)
        let type = request.headers[.contentType].map { $0.lowercased() }
        let isJSON = type.map { $0.hasPrefix("application/json") || $0.contains("+json") } ?? true
        return (Array(buffer.readableBytesView), isJSON ? nil : type)
    }

    private func collect(_ request: inout Request) async throws -> ByteBuffer {
        let limit = configuration.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit { throw Problem.tooLarge(limit: limit) }
        do {
            return try await request.collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw Problem.tooLarge(limit: limit)
        }
    }

    /// The JSON object of a body; nil when the body is empty (optional bodies).
    func optionalJSON(_ request: Request) async throws -> JSON? {
        let (bytes, otherType) = try await body(request)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) { return nil }
        do {
            return try JSON.parse(bytes)
        } catch {
            if let otherType { throw Problem.unsupportedMediaType(otherType) }
            throw error
        }
    }

    func json(_ request: Request) async throws -> JSON {
        guard let json = try await optionalJSON(request) else { throw Problem.malformedJSON("the request body is empty; send a JSON object") }
        return json
    }

    /// A positive integer id from the path.
    func id(_ path: PathParameters, _ name: String) throws -> Int64 {
        let text = path.get(name) ?? ""
        guard let id = Int64(text), id >= 1 else {
            throw Problem.invalidParameter(name, "\(name) must be a positive integer, got \"\(text)\"")
        }
        return id
    }

    /// A JSON answer.
    static func respond(_ json: JSON, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(bytes: json.encoded())))
    }

    /// Runs an engine call, turning its refusals into problems.
    func engineCall<T>(_ body: () async throws(EngineError) -> T) async throws(Problem) -> T {
        do { return try await body() } catch { throw Problem.from(error) }
    }

    /// Runs a store call, turning its refusals into problems.
    func storeCall<T>(_ body: () async throws -> T) async throws(Problem) -> T {
        do {
            return try await body()
        } catch let error as StoreError {
            throw Problem.from(error)
        } catch let problem as Problem {
            throw problem
        } catch {
            throw Problem.from(StoreError.unavailable("\(error)"))
        }
    }
}

/// Starts the engine with the server and shuts it down (grace, then `interrupted`) when the
/// server stops.
struct EngineService: Service {
    let engine: Engine

    func run() async throws {
        try await gracefulShutdown()
        await engine.shutdown()
    }
}
