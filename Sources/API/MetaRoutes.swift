import Domain
import Engine
import Foundation
import HTTPTypes
import HumanText
import Hummingbird
import NIOCore
import Sandbox
import Yams
import Wire

/// Health, readiness, metrics, policies, runtimes, the OpenAPI document and its docs page
/// (rendered by `DocsPage`).
struct MetaRoutes {
    let server: APIServer

    func register(_ table: RouteTable) {
        table.on(.get, "/health", .open) { _, _ in
            try APIServer.respond(WireHealth(status: "ok"))
        }
        table.on(.get, "/ready", .configurable("ready")) { _, _ in
            let checks = await readiness()
            if checks.allSatisfy(\.passes) {
                return try APIServer.respond(WireReady(status: "ready", checks: Self.checkResults(checks),
                                                       weaker_isolation: server.engine.weakerIsolation))
            }
            let failing = checks.filter { !$0.passes }.map { "\($0.name): \($0.result)" }
            var problem = Problem.unavailable("not-ready", "not ready: " + failing.joined(separator: "; "), retryAfter: 5)
            problem.extra.checks = Self.checkResults(checks)
            problem.extra.weaker_isolation = server.engine.weakerIsolation
            throw problem
        }
        table.on(.get, "/metrics", .configurable("metrics")) { _, _ in
            Response(status: .ok, headers: [.contentType: ServerMetrics.contentType],
                     body: .init(byteBuffer: ByteBuffer(bytes: server.metrics.exposition())))
        }
        table.on(.get, "/policies", .role(.operator)) { _, _ in
            let policies = server.engine.policies
            return try APIServer.respond(policies.names.compactMap { policies[$0] }.map(WirePolicy.init))
        }
        table.on(.get, "/policies/{name}", .role(.operator)) { _, path in
            let name = path.get("name") ?? ""
            let policies = server.engine.policies
            guard let policy = policies[name] else {
                throw Problem.notFound("no policy named \"\(name)\"\(Suggestions.didYouMean(name, in: policies.names)); "
                                       + "policies are \(policies.names.joined(separator: ", "))", field: "name")
            }
            return try APIServer.respond(WirePolicy(policy))
        }
        table.on(.post, "/policies/reload", .role(.admin)) { _, _ in
            let loaded = try await server.engineCall { () async throws(EngineError) in try server.engine.reloadPolicies() }
            await server.audit("policies.reload", "policies", nil, "now " + loaded.names.joined(separator: ", "))
            return try APIServer.respond(WirePolicyReload(policies: loaded.names, directory: loaded.directory))
        }
        table.on(.get, "/runtimes", .role(.viewer)) { _, _ in
            let runtimes = server.engine.configuration.runtimes
            return try APIServer.respond(runtimes.keys.sorted { $0.rawValue < $1.rawValue }.map { type in
                let runtime = runtimes[type]!
                return WireRuntime(script_type: type.rawValue, command: runtime.command, script_path: runtime.scriptPath)
            })
        }
        table.on(.get, "/openapi.json", .configurable("openapi")) { request, _ in
            let document = try OpenAPIDocument.shared()
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(bytes: document.json(serverURL: serverURL(request)))))
        }
        table.on(.get, "/openapi.yaml", .configurable("openapi")) { request, _ in
            let document = try OpenAPIDocument.shared()
            return Response(status: .ok, headers: [.contentType: "application/yaml"],
                            body: .init(byteBuffer: ByteBuffer(string: document.yaml(serverURL: serverURL(request)))))
        }
        table.on(.get, "/docs", .configurable("docs")) { request, _ in
            let page = try DocsPage.shared()
            var headers: HTTPFields = [.contentType: "text/html; charset=utf-8"]
            SecurityHeaders.add(to: &headers, styleHashes: [page.styleHash])
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: page.html)))
        }
    }

    /// The URL the client reached this server at: `public_url` when configured, else the
    /// request's scheme (`X-Forwarded-Proto` from a proxy, or http) and `Host`; the listen
    /// address when the Host header is missing or not a plain host[:port].
    func serverURL(_ request: Request) -> String {
        if let configured = server.configuration.publicURL { return configured }
        let forwarded = request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased()
        let scheme = forwarded == "https" ? "https" : "http"
        if let host = request.head.authority, !host.isEmpty, host.count <= 255,
           host.unicodeScalars.allSatisfy({ CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]").contains($0) }) {
            return "\(scheme)://\(host)"
        }
        let host = server.configuration.host.contains(":") ? "[\(server.configuration.host)]" : server.configuration.host
        return "\(scheme)://\(host):\(server.configuration.port)"
    }

    /// One readiness check: its name, its result in words (`ok` when all is well), and whether
    /// it lets the server be ready (isolation an operator allowed missing does).
    struct Check {
        var name: String
        var result: String
        var passes: Bool
    }

    /// Each check's result by its name, as `/ready` and its problem answer list them.
    static func checkResults(_ checks: [Check]) -> [String: String] {
        Dictionary(checks.map { ($0.name, $0.result) }, uniquingKeysWith: { first, _ in first })
    }

    /// What `/ready` checks: the store answers and its disk has room for new data, the sandbox's
    /// spawner runs (and whether it had to be restarted), the sandbox has its cgroup hierarchy and can write it, and the isolation runs get (all of it, or
    /// what `allow_weaker` let the server run without, which does not stop it being ready).
    func readiness() async -> [Check] {
        var checks: [Check] = []
        do {
            _ = try await server.store.pendingCount()
            let refusal = await server.store.refusalOfNewData()
            checks.append(Check(name: "store", result: refusal?.description ?? "ok", passes: refusal == nil))
        } catch {
            checks.append(Check(name: "store", result: "\(error)", passes: false))
        }
        let sandbox = server.engine.sandbox
        checks.append(Check(name: "sandbox", result: "ok", passes: true))
        // The spawner every sandbox is born from: ok while it runs, saying if it was restarted
        // (and why); not ready while it is down.
        let spawner = sandbox.spawnerStatus
        checks.append(Check(name: "spawner", result: spawner.restarts == 0 && spawner.isRunning ? "ok" : spawner.description,
                            passes: spawner.isRunning))
        if let cgroups = sandbox.cgroups {
            let unwritable = cgroups.baseDirectories.filter { access($0, W_OK) != 0 }
            checks.append(Check(name: "cgroups", result: unwritable.isEmpty ? "ok"
                                : "cannot write \(unwritable.joined(separator: ", ")): \(String(cString: strerror(errno)))",
                                passes: unwritable.isEmpty))
        } else {
            checks.append(Check(name: "cgroups", result: "disabled (allow_weaker): \(IsolationFeature.cgroups.consequence)",
                                passes: true))
        }
        let weakened = sandbox.configuration.weakenedIsolation
        checks.append(Check(name: "isolation", result: weakened.isEmpty ? "ok" : "weaker (allow_weaker): " + weakened.map {
            "without \($0.rawValue), \($0.consequence)"
        }.joined(separator: "; "), passes: true))
        return checks
    }

}

/// A composed YAML node as JSON, with mapping order kept and scalars typed by their resolved tag.
enum YAMLToJSON {
    static func convert(_ node: Node) -> JSON {
        switch node {
        case .scalar(let scalar):
            // Quoted scalars are strings; plain ones get the type YAML 1.1 reads in them.
            let tag = scalar.style == .plain ? Resolver.default.resolveTag(of: node) : Tag.Name.str
            switch tag.rawValue {
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.bool.rawValue: return node.bool.map(JSON.bool) ?? .string(scalar.string)
            case Tag.Name.int.rawValue: return node.int.map { .number(Double($0)) } ?? .string(scalar.string)
            case Tag.Name.float.rawValue: return node.float.map(JSON.number) ?? .string(scalar.string)
            default: return .string(scalar.string)
            }
        case .mapping(let mapping):
            return .object(mapping.map { key, value in (key.string ?? "\(key)", convert(value)) })
        case .sequence(let sequence):
            return .array(sequence.map(convert))
        case .alias:
            return .null
        }
    }
}
