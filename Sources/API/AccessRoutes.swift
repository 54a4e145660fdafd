import Credentials
import Domain
import Foundation
import HumanText
import Hummingbird
import Store
import Wire

/// `/tokens` (admins make, list and revoke tokens; a new token's text is answered once and
/// never again), `/whoami` (any token: what it is) and `/audit` (admins read the trail).
struct AccessRoutes {
    let server: APIServer

    /// A token name's and a tenant's limits: characters, and UTF-8 bytes.
    static let nameCharacters = 100, nameBytes = 400

    /// The members of a token's body (`TokenCreate`), as the wire type declares them.
    static let createFields = WireTokenBody.wireNames

    func register(_ table: RouteTable) {
        table.on(.post, "/tokens", .role(.admin)) { request, _ in
            let caller = try server.caller
            var new = try await newToken(server.json(request))
            new.createdBy = caller.token.id
            let text = TokenMint.make()
            new.digest = TokenMint.digest(text)
            let token = try await server.storeCall { try await server.access.createToken(new) }
            await server.audit("token.create", "token", String(token.id), "name \(token.name), role \(token.role.rawValue), tenant \(token.tenant)")
            return try APIServer.respond(Self.token(token, text: text), status: .created)
        }
        table.on(.get, "/tokens", .role(.admin)) { _, _ in
            let tokens = try await server.storeCall { try await server.access.tokens() }
            return try APIServer.respond(tokens.map { Self.token($0) })
        }
        table.on(.get, "/tokens/{id}", .role(.admin)) { _, path in
            let id = try server.id(path, "id")
            guard let token = try await server.storeCall({ try await server.access.token(id: id) }) else {
                throw Problem.notFound("token \(id) not found")
            }
            return try APIServer.respond(Self.token(token))
        }
        table.on(.delete, "/tokens/{id}", .role(.admin)) { _, path in
            let id = try server.id(path, "id")
            let token = try await server.storeCall { try await server.access.revokeToken(id: id, now: Date()) }
            await server.audit("token.revoke", "token", String(id), "name \(token.name)")
            return try APIServer.respond(Self.token(token))
        }
        table.on(.get, "/whoami", .role(.viewer)) { _, _ in
            try APIServer.respond(Self.token(try server.caller.token))
        }
        table.on(.get, "/audit", .role(.admin)) { request, _ in
            let query = try auditQuery(request.uri.queryParameters)
            let page = try await server.storeCall { try await server.access.audit(query) }
            return try APIServer.respond(WireAuditPage(entries: page.entries.map(Self.entry), next_cursor: page.nextCursor.map { String($0) }))
        }
    }

    // MARK: Representations

    /// A token as answered: never its digest; its text only when `text` is given (at creation).
    static func token(_ token: AccessToken, text: String? = nil) -> WireToken {
        WireToken(id: token.id, name: token.name, role: token.role.rawValue, tenant: token.tenant, policies: token.policies,
                  max_policy: token.maxPolicy, max_active: token.maxActive, created_at: Representations.format(token.createdAt),
                  expires_at: Representations.format(token.expiresAt), last_used_at: Representations.format(token.lastUsedAt),
                  revoked_at: Representations.format(token.revokedAt), created_by: token.createdBy, token: text,
                  max_priority: token.maxPriority, priority_ceiling: token.priorityCeiling)
    }

    static func entry(_ entry: AuditEntry) -> WireAuditEntry {
        WireAuditEntry(id: entry.id, at: Representations.format(entry.at), token_id: entry.tokenID, token_name: entry.tokenName,
                       role: entry.role?.rawValue, action: entry.action, target_type: entry.targetType, target_id: entry.targetID,
                       address: entry.address, detail: entry.detail)
    }

    // MARK: Validation

    func newToken(_ json: JSON) throws(Problem) -> NewAccessToken {
        let body = try BodyReader(json, allowed: Self.createFields)
        let name = try body.requiredString("name")
        if let problem = ExactName.problem(name, field: "name", characters: Self.nameCharacters, bytes: Self.nameBytes) {
            throw .validation("name", problem)
        }
        let roleText = try body.requiredString("role")
        guard let role = Role(rawValue: roleText) else {
            let names = Role.allCases.map(\.rawValue)
            throw .validation("role", "role: expected one of \(names.joined(separator: ", ")), got \"\(roleText)\""
                              + Suggestions.didYouMean(roleText, in: names))
        }
        // Kept verbatim and compared byte for byte (`ExactName`).
        let tenant = try body.string("tenant") ?? name
        if let problem = ExactName.problem(tenant, field: "tenant", characters: Self.nameCharacters, bytes: Self.nameBytes) {
            throw .validation("tenant", problem)
        }
        let known = server.engine.policies.names
        let policies = try body.strings("policies")
        for (i, policy) in (policies ?? []).enumerated() where !known.contains(policy) {
            throw .validation("policies[\(i)]", "policies: no policy named \"\(policy)\"\(Suggestions.didYouMean(policy, in: known)); "
                              + "policies are \(known.joined(separator: ", "))")
        }
        let maxPolicy = try body.string("max_policy")
        if let maxPolicy, !known.contains(maxPolicy) {
            throw .validation("max_policy", "max_policy: no policy named \"\(maxPolicy)\"\(Suggestions.didYouMean(maxPolicy, in: known)); "
                              + "policies are \(known.joined(separator: ", "))")
        }
        let maxActive = try body.integer("max_active", in: 1...1_000_000)
        let maxPriority = try body.integer("max_priority", in: -100...100)
        var expiresAt: Date?
        if let text = try body.string("expires_in") {
            let ms: Int64
            do { ms = try HumanUnitsText.milliseconds(text) } catch {
                throw .validation("expires_in", "expires_in: \(error.message) (or days: 30d)")
            }
            guard ms > 0 else { throw .validation("expires_in", "expires_in must be above zero") }
            expiresAt = Date().addingTimeInterval(Double(ms) / 1000)
        }
        if let text = try body.string("expires_at") {
            guard expiresAt == nil else { throw .validation("expires_at", "give expires_in or expires_at, not both") }
            guard let date = Representations.parseDate(text) else {
                throw .validation("expires_at", "expires_at must be an RFC 3339 date such as 2027-01-01T00:00:00Z, got \"\(text)\"")
            }
            guard date > Date() else { throw .validation("expires_at", "expires_at is in the past") }
            expiresAt = date
        }
        return NewAccessToken(name: name, role: role, tenant: tenant, digest: Data(), policies: policies, maxPolicy: maxPolicy,
                              maxActive: maxActive, expiresAt: expiresAt, createdAt: Date(), maxPriority: maxPriority)
    }

    func auditQuery(_ parameters: Parameters) throws(Problem) -> AuditQuery {
        let known = ["action", "token_id", "target_type", "target_id", "cursor", "limit"]
        for (key, _) in parameters where !known.contains(String(key)) {
            throw Problem.invalidParameter(String(key), "unknown query parameter \"\(key)\"\(Suggestions.didYouMean(String(key), in: known)); "
                                           + "parameters are \(known.joined(separator: ", "))")
        }
        var query = AuditQuery()
        query.action = parameters.get("action")
        query.targetType = parameters.get("target_type")
        query.targetID = parameters.get("target_id")
        for name in ["token_id", "cursor"] {
            guard let text = parameters.get(name) else { continue }
            guard let n = Int64(text), n >= 1 else { throw Problem.invalidParameter(name, "\(name) must be a positive integer, got \"\(text)\"") }
            if name == "token_id" { query.tokenID = n } else { query.before = n }
        }
        if let text = parameters.get("limit") {
            guard let limit = Int(text), (1...1000).contains(limit) else {
                throw Problem.invalidParameter("limit", "limit must be an integer from 1 to 1000, got \"\(text)\"")
            }
            query.limit = limit
        }
        return query
    }
}
