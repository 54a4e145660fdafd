import HTTPTypes
import Hummingbird

/// Cross-origin calls from the web origins of `cors_origins` (none by default): a preflight
/// (`OPTIONS` with `Access-Control-Request-Method`) from such an origin is answered 204 with the
/// methods of the path and the headers the API reads; every answer to such an origin carries
/// `Access-Control-Allow-Origin` and the headers a page may read. Other origins get no CORS
/// header at all, so their pages' browsers refuse the answers (and a preflight from them is a
/// 403 problem saying why). No credentials mode: tokens travel in `Authorization`, never in
/// cookies.
struct CORSMiddleware: RouterMiddleware {
    typealias Context = ConfineRequestContext
    let origins: [String]
    let table: RouteTable

    /// Request headers a page may send.
    static let allowedHeaders = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, Range, If-None-Match"
    /// Answer headers a page may read.
    static let exposedHeaders = "Location, Retry-After, X-Next-Cursor, Link, Idempotent-Replayed, ETag, Content-Range, "
        + "WWW-Authenticate, Confine-Version"
    /// How long a browser may keep a preflight's answer, in seconds.
    static let maxAge = "600"

    func allows(_ origin: String) -> Bool { origins.contains("*") || origins.contains(origin) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !origins.isEmpty, let origin = request.headers[.origin] else { return try await next(request, context) }
        let allowed = allows(origin)
        if request.method == .options, let wanted = request.headers[.accessControlRequestMethod] {
            guard allowed else {
                return Problem("forbidden", .forbidden, "the origin \(origin) is not in the server's cors_origins")
                    .response(instance: request.uri.path)
            }
            var methods = table.methods(matching: request.uri.path)
            if methods.contains(.get), !methods.contains(.head) { methods.append(.head) }
            guard !methods.isEmpty else {
                var problem = Problem.notFound("no route \(wanted) \(request.uri.path); see /openapi.json or /docs").response(instance: request.uri.path)
                problem.headers[.accessControlAllowOrigin] = origins.contains("*") ? "*" : origin
                return problem
            }
            var headers: HTTPFields = [
                .accessControlAllowOrigin: origins.contains("*") ? "*" : origin,
                .accessControlAllowMethods: methods.map(\.rawValue).joined(separator: ", "),
                .accessControlAllowHeaders: Self.allowedHeaders,
                .accessControlMaxAge: Self.maxAge,
            ]
            headers.append(HTTPField(name: .vary, value: "Origin"))
            return Response(status: .noContent, headers: headers)
        }
        var response = try await next(request, context)
        if allowed {
            response.headers[.accessControlAllowOrigin] = origins.contains("*") ? "*" : origin
            response.headers[.accessControlExposeHeaders] = Self.exposedHeaders
        }
        response.headers.append(HTTPField(name: .vary, value: "Origin"))
        return response
    }
}
