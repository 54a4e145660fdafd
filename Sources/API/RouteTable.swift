import HTTPTypes
import Hummingbird
import Synchronization

/// The routes the server answers, registered on the router and remembered, so that a request
/// for a known path with another method gets 405 with an `Allow` header (not 404), metrics
/// name the route a request matched by its template, and tests can compare the routes with
/// the OpenAPI document. Every GET route also answers HEAD (not listed in `all`: the document
/// lists GETs only).
final class RouteTable: Sendable {
    /// One route: a method and a path template (`/jobs/{id}`).
    struct Route: Sendable, Equatable {
        let method: HTTPRequest.Method
        let template: String
        let access: AccessRule
    }

    private let routes = Mutex<[Route]>([])
    /// A route as the router knows it: its own path (`/jobs/{p1}`) and a method.
    private struct Endpoint: Hashable {
        let method: HTTPRequest.Method
        let path: String
    }
    private let templates = Mutex<[Endpoint: String]>([:])
    private nonisolated(unsafe) let router: Router<ConfineRequestContext>
    private let authenticator: Authenticator

    init(router: Router<ConfineRequestContext>, authenticator: Authenticator) {
        self.router = router
        self.authenticator = authenticator
    }

    /// Registers `handler` for `method` on `template` (OpenAPI style: `/jobs/{id}`), callable as
    /// `access` says: the token is checked before the handler runs, which then finds its
    /// caller in `Caller.current`. A trailing slash on the request's path is accepted (the
    /// router ignores empty path components).
    ///
    /// The router wants one parameter name per position of the path tree (`/executions/{id}`
    /// and `/executions/{job_id}/run` would clash), so parameters are registered by position
    /// and handed to the handler under the template's names.
    ///
    /// With `restOfPath`, the template's last parameter takes the rest of the path, slashes
    /// included (`/executions/{id}/files/{path}` answers `/executions/7/files/plots/a.png`).
    func on(_ method: HTTPRequest.Method, _ template: String, _ access: AccessRule, restOfPath: Bool = false,
            _ handler: @escaping @Sendable (Request, PathParameters) async throws -> Response) {
        routes.withLock { $0.append(Route(method: method, template: template, access: access)) }
        let authenticator = self.authenticator
        var names: [(position: String, name: String)] = []
        let parts = template.split(separator: "/").enumerated().map { index, part -> String in
            guard part.hasPrefix("{"), part.hasSuffix("}") else { return String(part) }
            names.append(("p\(index)", String(part.dropFirst().dropLast())))
            return ":p\(index)"
        }
        var routed = parts
        let rest = restOfPath ? names.popLast()?.name : nil
        if rest != nil { routed[routed.count - 1] = "**" }
        let routerPath = RouterPath("/" + routed.joined(separator: "/"))
        templates.withLock {
            $0[Endpoint(method: method, path: routerPath.description)] = template
            if method == .get { $0[Endpoint(method: .head, path: routerPath.description)] = template }
        }
        let respond: @Sendable (Request, ConfineRequestContext) async throws -> Response = { [names] request, context in
            var values: [String: String] = [:]
            if let rest {
                values[rest] = context.parameters.getCatchAll().map { String($0).removingPercentEncoding ?? String($0) }
                    .joined(separator: "/")
            }
            for (position, name) in names {
                // The router hands the segment as sent: `hello%20world` is the job `hello world`.
                // Looked for byte by byte: Foundation's `contains(_: String)` bridges through
                // NSString (1.5 % of a `GET /jobs/{id}`'s CPU).
                let raw = context.parameters.get(position)
                values[name] = raw.map { $0.utf8.contains(UInt8(ascii: "%")) ? $0.removingPercentEncoding ?? $0 : $0 }
            }
            let caller = try await authenticator.authorize(request, address: context.clientAddress, rule: access)
            return try await Caller.$current.withValue(caller) {
                try await handler(request, PathParameters(values: values))
            }
        }
        router.on(routerPath, method: method, use: respond)
        // HEAD on every GET route: the GET's answer, whose body `HeadMiddleware` drops.
        if method == .get {
            router.on(routerPath, method: .head, use: respond)
        }
    }

    var all: [Route] { routes.withLock { $0 } }

    /// The template of the route a request matched, from the router's endpoint path (see
    /// `RequestContext.endpointPath`) and the method; nil when it matched none.
    func template(endpoint: String?, method: HTTPRequest.Method) -> String? {
        guard let endpoint else { return nil }
        return templates.withLock { $0[Endpoint(method: method, path: endpoint)] }
    }

    /// The methods answered on a concrete path, in registration order.
    func methods(matching path: String) -> [HTTPRequest.Method] {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        var methods: [HTTPRequest.Method] = []
        for route in all {
            let template = route.template.split(separator: "/", omittingEmptySubsequences: true)
            guard template.count == parts.count else { continue }
            // A literal segment must match; a {parameter} matches anything.
            let matches = zip(template, parts).allSatisfy { t, p in (t.hasPrefix("{") && t.hasSuffix("}")) || t == p }
            if matches, !methods.contains(route.method) { methods.append(route.method) }
        }
        if let get = methods.firstIndex(of: .get) { methods.insert(.head, at: get + 1) }
        return methods
    }
}

/// The path parameters of a request, by the names of the route's template.
struct PathParameters: Sendable {
    let values: [String: String]

    func get(_ name: String) -> String? { values[name] }
}
