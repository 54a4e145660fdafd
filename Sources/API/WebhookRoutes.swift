import Credentials
import Domain
import Engine
import Foundation
import Hummingbird
import Store
import Wire

/// Webhooks: `GET /executions/{id}/deliveries` (viewer: every delivery of an execution's end
/// with every attempt — time, status code or error, duration; another tenant's execution is
/// 404) and `GET`/`POST /webhook-secret` (admin: the tenant's signing secret, made or replaced
/// by the POST, which alone shows it). `CallbackReader` reads `callback`/`callback_url`.
struct WebhookRoutes {
    let server: APIServer

    func register(_ table: RouteTable) {
        table.on(.get, "/executions/{id}/deliveries", .role(.viewer)) { _, path in
            let id = try server.id(path, "id")
            let caller = try server.caller
            guard let execution = try await server.storeCall({ try await server.store.execution(id: id) }),
                  caller.sees(tenant: execution.tenant) else {
                throw Problem.notFound("execution \(id) not found")
            }
            let deliveries = try await server.storeCall { try await server.store.deliveries(executionID: id) }
            return try APIServer.respond(WireDeliveryList(execution_id: id, deliveries: deliveries.map(Self.wire)))
        }
        table.on(.get, "/webhook-secret", .role(.admin)) { request, _ in
            let tenant = try tenant(request)
            let current = try await server.storeCall { try await server.store.webhookSecret(tenant: tenant) }
            return try APIServer.respond(WireWebhookSecret(tenant: tenant, exists: current != nil,
                                                           created_at: current.map { Timestamp.rfc3339($0.createdAt) }))
        }
        table.on(.post, "/webhook-secret", .role(.admin)) { request, _ in
            let tenant = try tenant(request)
            guard let box = server.secrets else {
                throw Problem.conflict("this server has no secrets key; a webhook secret cannot be sealed (secrets_key)")
            }
            let secret = WebhookSignature.makeSecret()
            let sealed: String
            do { sealed = try box.seal(secret) } catch {
                throw Problem("internal", .internalServerError, "sealing the webhook secret failed: \(error)")
            }
            let now = Date()
            try await server.storeCall { try await server.store.setWebhookSecret(tenant: tenant, sealed: sealed, now: now) }
            await server.audit("webhook_secret.create", "tenant", tenant, "webhook secret made or replaced")
            return try APIServer.respond(WireWebhookSecret(tenant: tenant, exists: true, created_at: Timestamp.rfc3339(now),
                                                           secret: secret), status: .created)
        }
    }

    /// The tenant asked for (`?tenant=`), else the caller's.
    func tenant(_ request: Request) throws -> String {
        let caller = try server.caller
        let tenant = request.uri.queryParameters.get("tenant") ?? caller.token.tenant
        guard !tenant.isEmpty, tenant.utf8.count <= 200 else {
            throw Problem.invalidParameter("tenant", "tenant must be 1 to 200 bytes")
        }
        return tenant
    }

    static func wire(_ d: WebhookDelivery) -> WireDelivery {
        WireDelivery(id: d.id, event: d.event, url: d.url, status: d.status.rawValue, created_at: Representations.format(d.createdAt),
                     next_attempt_at: Representations.format(d.nextAttemptAt),
                     attempts: d.attempts.map {
                         WireDeliveryAttempt(at: Representations.format($0.at), status_code: $0.statusCode, error: $0.error,
                                             duration_ms: $0.durationMs)
                     })
    }

    /// The body a callback receives for an execution.
    static func payload(_ execution: Execution) -> [UInt8] {
        let wire = WireWebhookPayload(event: "finished", execution: Representations.execution(execution, withOutput: false),
                                      output_url: "/executions/\(execution.id)/output")
        return (try? WireJSON.encode(wire)) ?? Array("{}".utf8)
    }
}

/// Reads `callback` (`{"url": …, "events": ["finished"]}`, or null to remove a job's) and
/// `callback_url` (Judge0's spelling: the URL alone) of a job's or a run's body.
struct CallbackReader {
    static let fields = WireCallbackBody.wireNames
    /// The longest URL accepted.
    static let maxURLBytes = 2048

    /// nil: neither member; `.some(nil)`: `callback: null`; else the callback.
    static func read(_ body: BodyReader) throws(Problem) -> WebhookCallback?? {
        let object = body.members["callback"], url = body.members["callback_url"]
        if object != nil, object != .null, url != nil, url != .null {
            throw .validation(body.field("callback_url"), "give callback or callback_url, not both")
        }
        if let text = try body.string("callback_url") {
            return .some(WebhookCallback(url: try checkedURL(text, field: body.field("callback_url"))))
        }
        guard let object else { return url == .null ? .some(nil) : nil }
        if object == .null { return .some(nil) }
        let reader = try BodyReader(object, path: body.field("callback"), allowed: fields)
        let link = try checkedURL(try reader.requiredString("url"), field: reader.field("url"))
        let events = try reader.strings("events") ?? ["finished"]
        guard !events.isEmpty else { throw .validation(reader.field("events"), "\(reader.field("events")) is empty; use [\"finished\"]") }
        for (i, event) in events.enumerated() where !WebhookCallback.knownEvents.contains(event) {
            throw .validation("\(reader.field("events"))[\(i)]", "\(reader.field("events"))[\(i)]: unknown event \"\(event)\"; events are "
                              + WebhookCallback.knownEvents.joined(separator: ", "))
        }
        return .some(WebhookCallback(url: link, events: events))
    }

    /// An absolute http or https URL with a host, no credentials, 2048 bytes at most.
    static func checkedURL(_ text: String, field: String) throws(Problem) -> String {
        guard text.utf8.count <= maxURLBytes else { throw .validation(field, "\(field) is longer than \(maxURLBytes) bytes") }
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased() else {
            throw .validation(field, "\(field): \"\(text)\" is not a URL")
        }
        guard scheme == "http" || scheme == "https" else {
            throw .validation(field, "\(field): the scheme must be http or https, not \(scheme)")
        }
        guard let host = url.host, !host.isEmpty else { throw .validation(field, "\(field): \"\(text)\" has no host") }
        guard url.user == nil, url.password == nil else {
            throw .validation(field, "\(field): credentials in the URL are refused; receivers verify X-Confine-Signature")
        }
        return text
    }
}
