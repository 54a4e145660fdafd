import Credentials
import Domain
import Engine
import Foundation
import Prometheus
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Store
import Wire

/// The HTTP face of Confine: every route of `openapi.yaml` on a Hummingbird 2 router, each
/// behind its declared role (bearer tokens), errors as problem+json, the OpenAPI document and
/// its docs page, metrics at `/metrics`. It holds no state of its own: jobs and executions live
/// in the store, tokens and the audit trail in the access store, runs in the engine, values of
/// metrics in `metrics.registry`.
public struct APIServer: Sendable {
    public let engine: Engine
    public let configuration: ServerConfiguration
    public let access: any AccessStore
    /// Seals secret environment values; nil: jobs cannot have secrets (refused with words).
    public let secrets: SecretBox?
    /// Where requests are counted and what `/metrics` shows; the engine should have been made
    /// with `metrics.engine`, or its metrics are missing there.
    public let metrics: ServerMetrics
    let authenticator: Authenticator
    /// Finished executions' answers kept in memory (`GET /executions/{id}`).
    let finishedAnswers = FinishedAnswers()
    /// When this server was made: an idempotency key held since before belongs to a request
    /// that a stopped server will never answer.
    let startedAt = Date()

    public init(engine: Engine, configuration: ServerConfiguration, access: any AccessStore, secrets: SecretBox?,
                metrics: ServerMetrics, logger: Logger = Logger(label: "confine.api")) {
        self.engine = engine
        self.configuration = configuration
        self.access = access
        self.secrets = secrets
        self.metrics = metrics
        self.authenticator = Authenticator(store: access, publicRoutes: configuration.openRoutes, logger: logger)
        // /metrics says which node answered (nodes sharing a database are scraped one by one).
        metrics.registry.makeGauge(name: "confine_node_info", labels: [("node", engine.configuration.workerName)]).set(to: 1.0)
    }

    var store: any ExecutionStore { engine.store }

    /// The router with every route.
    public func router() -> Router<ConfineRequestContext> { routerAndTable().router }

    /// Every route answered, as (method, OpenAPI path template, who may call it): what tests
    /// compare with the OpenAPI document. `role` is nil for a route open to all, `switch` names
    /// the `public_routes` entry that can open it.
    public var routes: [(method: String, path: String, role: String?, switch: String?)] {
        routerAndTable().table.all.map { route in
            switch route.access {
            case .open: return (route.method.rawValue, route.template, nil, nil)
            case .role(let role): return (route.method.rawValue, route.template, role.rawValue, nil)
            case .configurable(let name):
                return (route.method.rawValue, route.template, configuration.openRoutes.contains(name) ? nil : Role.viewer.rawValue, name)
            }
        }
    }

    func routerAndTable() -> (router: Router<ConfineRequestContext>, table: RouteTable) {
        let router = Router(context: ConfineRequestContext.self)
        let table = RouteTable(router: router, authenticator: authenticator)
        // Added first, so that they wrap every route registered after them (and the not-found
        // one); metrics outermost, to count the status of every answer, problems included.
        router.add(middleware: HTTPMetricsMiddleware(table: table, metrics: metrics.http))
        router.add(middleware: HeadMiddleware())
        router.add(middleware: VersionHeaderMiddleware())
        router.add(middleware: CORSMiddleware(origins: configuration.corsOrigins, table: table))
        router.add(middleware: ProblemMiddleware(table: table))
        JobRoutes(server: self).register(table)
        ScheduleRoutes(server: self).register(table)
        WebhookRoutes(server: self).register(table)
        ExecutionRoutes(server: self).register(table)
        AdHocRoutes(server: self).register(table)
        BatchRoutes(server: self).register(table)
        ArtifactRoutes(server: self).register(table)
        MetaRoutes(server: self).register(table)
        AccessRoutes(server: self).register(table)
        NodeRoutes(server: self).register(table)
        DashboardRoutes(server: self).register(table)
        // /metrics says which node answered (nodes sharing a database are scraped one by one).
        metrics.registry.makeGauge(name: "confine_node_info", labels: [("node", engine.configuration.workerName)]).set(to: 1.0)
        return (router, table)
    }

    /// An application serving `router()` on the configured address, with the connection
    /// timeouts of the configuration (`idle_timeout`, `request_timeout`). `onBound` learns the
    /// port (useful with port 0).
    public func application(logger: Logger, onBound: (@Sendable (Int) -> Void)? = nil)
        -> some ApplicationProtocol {
        let requestTimeout = TimeAmount(configuration.requestTimeout)
        let maximum = configuration.maxConnections ?? ConnectionLimiter.defaultMaximum()
        let limiter = ConnectionLimiter(maximum: maximum, perClient: configuration.maxConnectionsPerClient ?? max(16, maximum / 4))
        var app = Application(
            router: router(),
            server: .http1(configuration: .init(
                additionalChannelHandlers: [ConnectionLimitHandler(limiter: limiter), RequestDeadlineHandler(timeout: requestTimeout)],
                idleTimeout: TimeAmount(configuration.idleTimeout))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Confine/\(ConfineVersion.current)"),
            onServerRunning: { channel in
                if let port = channel.localAddress?.port { onBound?(port) }
            },
            logger: logger)
        app.addServices(EngineService(engine: engine))
        return app
    }

    // MARK: Shared by the routes

    /// The caller of a route that needs a token (set by the route table before the handler).
    var caller: Caller {
        get throws(Problem) {
            guard let caller = Caller.current else {
                throw Problem("internal", .internalServerError, "a route that needs a token ran without one")
            }
            return caller
        }
    }

    /// Appends to the audit trail what the caller just did. A failure to record is logged (the
    /// action itself already happened and is answered).
    func audit(_ action: String, _ targetType: String, _ targetID: String?, _ detail: String? = nil) async {
        let entry = auditEntry(action, targetType, targetID, detail)
        do { try await access.appendAudit(entry) } catch {
            authenticator.logger.error("recording \(action) of \(targetType) \(targetID ?? "") in the audit trail failed: \(error)")
        }
    }

    /// The caller's entry in the audit trail for `action` on a target, now.
    func auditEntry(_ action: String, _ targetType: String, _ targetID: String?, _ detail: String? = nil) -> AuditEntry {
        let caller = Caller.current
        return AuditEntry(at: Date(), tokenID: caller?.token.id, tokenName: caller?.token.name, role: caller?.role,
                          action: action, targetType: targetType, targetID: targetID, address: caller?.address, detail: detail)
    }

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

    func collect(_ request: inout Request) async throws -> ByteBuffer {
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

    /// A wire type as the answer (`WireJSON`: members in order, nulls written).
    static func respond<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        respond(bytes: try WireJSON.encode(value), status: status)
    }

    static func respond(bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        respond(buffer: ByteBuffer(bytes: bytes), status: status)
    }

    /// A JSON answer whose body is already in a buffer (one kept to be answered again).
    static func respond(buffer: ByteBuffer, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
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
