import API
import Credentials
import Domain
import Foundation
import Store
import Testing

/// Tokens, roles, tenants, quotas, the audit trail and secrets, over real HTTP on loopback.
@Suite("Access: tokens, roles, tenants, quotas, audit, secrets")
struct AccessTests {
    /// A concrete path for an OpenAPI template, with ids that exist.
    static func concrete(_ template: String, ids: [String: String]) -> String {
        var path = template
        for (name, value) in ids { path = path.replacingOccurrences(of: "{\(name)}", with: value) }
        return path
    }

    @Test("The walk: every route of the document refuses a missing, malformed, unknown, expired and revoked token (401) and a weaker role (403); /health, the document, the docs and the dashboard's files alone are open")
    func everyRouteRefuses() async throws {
        try await LiveServer.with { s in
            let doc = try await s.get("/openapi.json").object
            let paths = try #require(doc["paths"] as? [String: [String: Any]])
            // The router and the document agree on every route's role.
            let served = s.routes
            var documented: [String: String] = [:]
            for (path, item) in paths {
                for (method, operation) in item where ["get", "post", "patch", "delete"].contains(method) {
                    let op = try #require(operation as? [String: Any])
                    documented["\(method.uppercased()) \(path)"] = (op["x-confine-role"] as? String) ?? "open"
                }
            }
            for route in served {
                #expect(documented["\(route.method) \(route.path)"] == (route.role ?? "open"), "\(route.method) \(route.path)")
            }
            #expect(documented.count == served.count)
            #expect(documented.filter { $0.value == "open" }.keys.sorted()
                    == ["GET /", "GET /docs", "GET /health", "GET /openapi.json", "GET /openapi.yaml", "GET /ui", "GET /ui/{asset}"])

            let job = try await s.job("walk", "bash", "true")
            let run = try await s.post("/executions/\(job)/run?wait=true")
            let execution = try #require(run.object["id"] as? Int)
            let (tokenID, _) = try await s.token("victim", role: "viewer")
            let ids = ["id": String(job), "job_id": String(job), "name": "walk", "script_type": "bash", "path": "result.txt", "asset": "app.js"]
            let viewer = try await s.token("weak-viewer", role: "viewer", extra: #", "tenant": "admin""#).token
            let submitter = try await s.token("weak-submitter", role: "submitter", extra: #", "tenant": "admin""#).token
            let operatorToken = try await s.token("weak-operator", role: "operator").token
            let revoked = try await s.token("revoked", role: "admin")
            try #require(try await s.call("DELETE", "/tokens/\(revoked.id)").status == 200)
            let expired = TokenMint.make()
            _ = try await s.store.createToken(NewAccessToken(name: "expired", role: .admin, tenant: "admin", digest: TokenMint.digest(expired),
                                                             expiresAt: Date().addingTimeInterval(-1), createdAt: Date().addingTimeInterval(-10)))
            let weaker: [String: String] = ["submitter": viewer, "operator": submitter, "admin": operatorToken]
            var checked = 0
            for (key, role) in documented.sorted(by: { $0.key < $1.key }) {
                let parts = key.split(separator: " ", maxSplits: 1)
                let method = String(parts[0])
                var idsHere = ids
                if parts[1].hasPrefix("/executions/{id}") { idsHere["id"] = String(execution) }
                if parts[1].hasPrefix("/tokens/{id}") { idsHere["id"] = String(tokenID) }
                let path = Self.concrete(String(parts[1]), ids: idsHere)
                let body = method == "GET" || method == "DELETE" ? nil : "{}"
                if role == "open" {
                    let answer = try await s.call(method, path, json: body, as: .anonymous, followRedirects: false)
                    #expect(answer.status == (path == "/" ? 302 : 200), "\(key)")
                    continue
                }
                for (credential, what) in [(LiveServer.Credential.anonymous, "no token"), (.token("cfn_short"), "malformed"),
                                           (.token(TokenMint.make()), "unknown"), (.token(expired), "expired"),
                                           (.token(revoked.token), "revoked")] {
                    let answer = try await s.call(method, path, json: body, as: credential)
                    answer.expectProblem(401)
                    #expect(answer.headers["www-authenticate"]?.hasPrefix("Bearer realm=\"confine\"") == true, "\(key) \(what)")
                }
                if let weak = weaker[role] {
                    try await s.call(method, path, json: body, as: .token(weak)).expectProblem(403, "needs the role \(role)")
                }
                checked += 1
            }
            #expect(checked == documented.filter { $0.value != "open" }.count)
            // Not a Bearer token at all.
            try await s.call("GET", "/jobs", headers: ["Authorization": "Basic YWRtaW46YWRtaW4="], as: .anonymous).expectProblem(401, "Bearer")
        }
    }

    @Test("Tenants: a submitter cannot read, run, edit, cancel or list another tenant's jobs and executions (404, not 403); its tenant's tokens share them")
    func tenantsAreIsolated() async throws {
        try await LiveServer.with { s in
            let alice = try await s.token("alice", role: "submitter", extra: #", "tenant": "data""#).token
            let alicesBot = try await s.token("alice-bot", role: "viewer", extra: #", "tenant": "data""#).token
            let mallory = try await s.token("mallory", role: "submitter", extra: #", "tenant": "other""#).token
            let job = try await s.job("report", "bash", "sleep 20", extra: #", "concurrency": "allow""#, as: .token(alice))
            let run = try await s.post("/executions/\(job)/run", as: .token(alice))
            let execution = try #require(run.object["execution_id"] as? Int)

            // Mallory sees nothing of it: every route answers as for an id that does not exist.
            let missing = 999_999
            for (method, path, body) in [("GET", "/jobs/\(job)", nil), ("PATCH", "/jobs/\(job)", #"{"script_content": "id"}"#),
                                         ("DELETE", "/jobs/\(job)", nil), ("POST", "/executions/\(job)/run", nil),
                                         ("POST", "/jobs/\(job)/run", nil), ("GET", "/executions/\(execution)", nil),
                                         ("POST", "/executions/\(execution)/cancel", nil), ("GET", "/executions/\(execution)/output", nil),
                                         ("GET", "/executions/job/\(job)", nil)] as [(String, String, String?)] {
                let theirs = try await s.call(method, path, json: body, as: .token(mallory))
                theirs.expectProblem(404)
                let none = try await s.call(method, path.replacingOccurrences(of: "/\(job)", with: "/\(missing)")
                    .replacingOccurrences(of: "/\(execution)", with: "/\(missing)"), json: body, as: .token(mallory))
                #expect(none.status == 404)
                // The same words, but for the id.
                let a = (theirs.object["detail"] as? String ?? "").replacingOccurrences(of: String(job), with: "N")
                    .replacingOccurrences(of: String(execution), with: "N")
                let b = (none.object["detail"] as? String ?? "").replacingOccurrences(of: String(missing), with: "N")
                #expect(a == b, "\(method) \(path)")
            }
            try await s.get("/jobs/by_name/report", as: .token(mallory)).expectProblem(404)
            try await s.get("/executions/\(execution)/output?follow=true", as: .token(mallory)).expectProblem(404, "execution \(execution) not found")
            #expect(try await s.get("/jobs", as: .token(mallory)).array.isEmpty)
            #expect(try await s.get("/jobs/by_script_type/bash", as: .token(mallory)).array.isEmpty)
            let listing = try await s.get("/executions", as: .token(mallory))
            #expect((listing.object["executions"] as? [Any])?.isEmpty == true, "\(listing)")
            #expect(try await s.get("/executions?job_id=\(job)", as: .token(mallory)).object["executions"] as? [Any] != nil)
            #expect((try await s.get("/executions?job_id=\(job)", as: .token(mallory)).object["executions"] as? [Any])?.isEmpty == true)
            // Names are per tenant: Mallory may use the same name without learning anything.
            let hers = try await s.job("report", "bash", "echo mine", as: .token(mallory))
            #expect(hers != job)
            try await s.post("/jobs", #"{"name": "report", "script_type": "bash", "script_content": "x"}"#, as: .token(mallory))
                .expectProblem(409, "report")

            // Alice's tenant shares: her viewer sees both, cannot change anything.
            #expect(try await s.get("/jobs/\(job)", as: .token(alicesBot)).status == 200)
            #expect(try await s.get("/executions/\(execution)", as: .token(alicesBot)).status == 200)
            #expect(try await s.get("/jobs", as: .token(alicesBot)).array.map { $0["id"] as? Int } == [job])
            try await s.post("/executions/\(execution)/cancel", as: .token(alicesBot)).expectProblem(403)
            // Operators and admins see every tenant; by name, the two "report"s are ambiguous for them.
            let operatorToken = try await s.token("ops", role: "operator").token
            #expect(Set(try await s.get("/jobs", as: .token(operatorToken)).array.compactMap { $0["id"] as? Int }) == [job, hers])
            try await s.get("/jobs/by_name/report", as: .token(operatorToken)).expectProblem(409, "/jobs/{id}")
            #expect(try await s.get("/jobs/by_name/report", as: .token(alice)).object["id"] as? Int == job)
            // Alice cancels her own.
            let cancelled = try await s.post("/executions/\(execution)/cancel", as: .token(alice))
            #expect(cancelled.status == 200, "\(cancelled)")
            #expect(try await s.get("/executions/\(execution)", as: .token(alice)).object["submitted_by"] as? Int != nil)
        }
    }

    @Test("An attacker's walk: guessed tokens, a token replayed after revocation, a token in the query string, ids enumerated")
    func attackersWalk() async throws {
        try await LiveServer.with { s in
            let victim = try await s.token("victim", role: "submitter", extra: #", "tenant": "victims""#)
            let attacker = try await s.token("attacker", role: "submitter", extra: #", "tenant": "attackers""#).token
            var ids: [Int] = []
            for i in 0..<5 { ids.append(try await s.job("secret-\(i)", "bash", "echo \(i)", as: .token(victim.token))) }
            // Guessing: random well-formed tokens, near-misses of a real one, junk.
            for _ in 0..<50 { try await s.get("/jobs", as: .token(TokenMint.make())).expectProblem(401, "not valid") }
            var nearMiss = Array(victim.token)
            nearMiss[nearMiss.count - 1] = nearMiss.last == "A" ? "B" : "A"
            try await s.get("/jobs", as: .token(String(nearMiss))).expectProblem(401)
            for junk in ["", "cfn_", String(repeating: "a", count: 5000), "cfn_" + String(repeating: "\u{e9}", count: 43), victim.token + " "] {
                let answer = try await s.call("GET", "/jobs", headers: ["Authorization": "Bearer \(junk)"], as: .anonymous)
                #expect(answer.status == 401 || junk.hasSuffix(" "), "\(junk.prefix(10)): \(answer)")
            }
            // The query string never carries a token, not even a valid one, not even beside a valid header.
            try await s.get("/jobs?access_token=\(victim.token)", as: .anonymous).expectProblem(401, "query string")
            try await s.get("/jobs?token=\(victim.token)", as: .token(victim.token)).expectProblem(401, "query string")
            try await s.get("/executions?cursor=1&api_key=x", as: .token(victim.token)).expectProblem(401, "query string")
            // Enumerating ids: every one of another tenant's is "not found".
            for id in max(1, ids.min()! - 2)...(ids.max()! + 2) {
                try await s.get("/jobs/\(id)", as: .token(attacker)).expectProblem(404)
                try await s.post("/jobs/\(id)/run", as: .token(attacker)).expectProblem(404)
            }
            // Revocation holds at once; replaying the token afterwards is refused.
            #expect(try await s.get("/jobs", as: .token(victim.token)).array.count == 5)
            let revoked = try await s.call("DELETE", "/tokens/\(victim.id)")
            #expect(revoked.object["revoked_at"] is String, "\(revoked)")
            try await s.get("/jobs", as: .token(victim.token)).expectProblem(401, "revoked")
            try await s.post("/jobs/\(ids[0])/run", as: .token(victim.token)).expectProblem(401, "revoked")
            // The trail names who did it and from where, never a token's text.
            let trail = try await s.get("/audit?limit=1000")
            #expect(trail.status == 200)
            #expect(!trail.text.contains(victim.token) && !trail.text.contains(attacker) && !trail.text.contains(s.adminToken))
            let revocation = (trail.object["entries"] as? [[String: Any]] ?? []).first { $0["action"] as? String == "token.revoke" }
            #expect(revocation?["target_id"] as? String == String(victim.id))
            #expect(revocation?["address"] as? String == "127.0.0.1")
            #expect(revocation?["token_name"] as? String == "test-admin")
        }
    }

    @Test("Quotas: max_active counts pending and running executions; policies and max_policy refuse looser policies (429 naming the quota)")
    func quotas() async throws {
        try await LiveServer.with { s in
            let limited = try await s.token("limited", role: "submitter", extra: #", "max_active": 1, "max_policy": "default""#).token
            let job = try await s.job("slow", "bash", "sleep 30", extra: #", "concurrency": "allow""#, as: .token(limited))
            let first = try await s.post("/executions/\(job)/run", as: .token(limited))
            #expect(first.status == 200, "\(first)")
            let over = try await s.post("/executions/\(job)/run", as: .token(limited))
            over.expectProblem(429, "max_active")
            #expect(over.object["quota"] as? String == "max_active")
            // Another token of the same tenant has its own count.
            let id = try #require(first.object["execution_id"] as? Int)
            // Cancelled (200; 202 when the run took more than the answer's two seconds to end, on a
            // machine loaded by the rest of the suite), or already ended by its policy's wall_time
            // (409): either way it stops counting once final.
            let cancel = try await s.post("/executions/\(id)/cancel", as: .token(limited))
            #expect(cancel.status == 200 || cancel.status == 202 || cancel.status == 409, "\(cancel)")
            _ = try await s.waitFinal(id, as: .token(limited))
            let again = try await s.post("/executions/\(job)/run", as: .token(limited))
            #expect(again.status == 200, "room again once the first ended: \(again)")
            try await s.post("/executions/\(again.object["execution_id"] as? Int ?? 0)/cancel", as: .token(limited))

            // max_policy default: the host's network is refused, at creation and at update.
            let networked = try await s.post("/jobs", #"{"name": "net", "script_type": "bash", "script_content": "true", "policy": "networked"}"#,
                                             as: .token(limited))
            networked.expectProblem(429, field: "policy", "network")
            #expect(networked.object["quota"] as? String == "max_policy")
            try await s.call("PATCH", "/jobs/\(job)", json: #"{"policy": "networked"}"#, as: .token(limited)).expectProblem(429, "max_policy")
            // A job the admin made under networked cannot be run by a strict-capped token of its tenant.
            let strictOnly = try await s.token("strict-only", role: "submitter", extra: #", "tenant": "admin", "max_policy": "strict""#).token
            let loose = try await s.job("loose", "bash", "true")
            try await s.post("/jobs/\(loose)/run", as: .token(strictOnly)).expectProblem(429, "max_policy strict")
            // policies: only the named ones.
            let onlyStrict = try await s.token("only-strict", role: "submitter", extra: #", "policies": ["strict"]"#).token
            try await s.post("/jobs", #"{"name": "d", "script_type": "bash", "script_content": "true"}"#, as: .token(onlyStrict))
                .expectProblem(429, field: "policy", "policy default is not among this token's policies (strict)")
            #expect(try await s.post("/jobs", #"{"name": "s", "script_type": "bash", "script_content": "true", "policy": "strict"}"#,
                                     as: .token(onlyStrict)).status == 200)
            // A token is refused when its fields are wrong, each named.
            try await s.post("/tokens", #"{"name": "x", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}"#)
                .expectProblem(422, field: "expires_at", "in the past")
            try await s.post("/tokens", #"{"name": "x", "role": "viewer", "expires_in": "1d", "expires_at": "2999-01-01T00:00:00Z"}"#)
                .expectProblem(422, field: "expires_at", "not both")
            try await s.post("/tokens", #"{"name": "x", "role": "viewer", "expires_in": "soon"}"#).expectProblem(422, field: "expires_in")
            try await s.post("/tokens", #"{"name": "a\u0007b", "role": "viewer"}"#).expectProblem(422, field: "name")
            try await s.post("/tokens", #"{"name": "x", "role": "viewer", "polices": ["strict"]}"#)
                .expectProblem(422, field: "polices", "did you mean \"policies\"")
            try await s.post("/tokens", #"{"name": "x", "role": "viewer", "policies": ["stirct"]}"#).expectProblem(422, field: "policies[0]")
            try await s.call("DELETE", "/tokens/999999").expectProblem(404, "token 999999")
            // Quotas are validated when the token is made.
            try await s.post("/tokens", #"{"name": "x", "role": "submitter", "max_policy": "nope"}"#).expectProblem(422, field: "max_policy")
            try await s.post("/tokens", #"{"name": "x", "role": "root"}"#).expectProblem(422, field: "role")
        }
    }

    @Test("Tokens: shown once, stored as a digest, last use recorded, expiry honoured; /whoami; the audit trail of every change")
    func tokensAndAudit() async throws {
        try await LiveServer.with { s in
            let made = try await s.post("/tokens", #"{"name": "ci", "role": "submitter", "tenant": "build", "expires_in": "30d"}"#)
            #expect(made.status == 201)
            let text = try #require(made.object["token"] as? String)
            #expect(TokenMint.isWellFormed(text))
            #expect(made.object["last_used_at"] is NSNull && made.object["expires_at"] is String)
            let id = try #require(made.object["id"] as? Int)
            let listed = try await s.get("/tokens")
            #expect(!listed.text.contains(text) && listed.array.allSatisfy { $0["token"] == nil })
            let me = try await s.get("/whoami", as: .token(text))
            #expect(me.object["name"] as? String == "ci" && me.object["role"] as? String == "submitter" && me.object["tenant"] as? String == "build")
            #expect(try await s.get("/tokens/\(id)").object["last_used_at"] is String, "the use was recorded")
            // Only the digest is in the database (its file on SQLite, its rows on PostgreSQL).
            if let sqlite = s.sqlite {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: sqlite.path))
                let wal = (try? Data(contentsOf: URL(fileURLWithPath: sqlite.path + "-wal"))) ?? Data()
                #expect(bytes.range(of: Data(text.utf8)) == nil && wal.range(of: Data(text.utf8)) == nil)
                #expect(wal.range(of: TokenMint.digest(text)) != nil || bytes.range(of: TokenMint.digest(text)) != nil)
            } else {
                #expect(try await s.store.token(digest: TokenMint.digest(text)) != nil)
                #expect(try await s.store.tokens().allSatisfy { $0.name != text })
            }

            let job = try await s.job("audited", "bash", "sleep 10", as: .token(text))
            try await s.call("PATCH", "/jobs/\(job)", json: #"{"script_content": "sleep 20"}"#, as: .token(text))
            let run = try await s.post("/jobs/\(job)/run", as: .token(text))
            let execution = try #require(run.object["execution_id"] as? Int)
            try await s.post("/executions/\(execution)/cancel", as: .token(text))
            _ = try await s.waitFinal(execution)
            try await s.call("DELETE", "/jobs/\(job)", as: .token(text))
            try await s.post("/policies/reload")
            try await s.call("DELETE", "/tokens/\(id)")
            let entries = try await s.get("/audit").object["entries"] as? [[String: Any]] ?? []
            let actions = entries.map { $0["action"] as? String ?? "" }
            #expect(Array(actions.prefix(8)) == ["token.revoke", "policies.reload", "job.delete", "execution.cancel", "execution.run",
                                                 "job.update", "job.create", "token.create"], "\(actions)")
            let byCI = entries.filter { $0["token_name"] as? String == "ci" }
            #expect(byCI.count == 5 && byCI.allSatisfy { $0["role"] as? String == "submitter" && $0["address"] as? String == "127.0.0.1" })
            #expect(byCI.first { $0["action"] as? String == "execution.run" }?["target_id"] as? String == String(execution))
            let filtered = try await s.get("/audit?action=job.update").object["entries"] as? [[String: Any]] ?? []
            #expect(filtered.count == 1 && (filtered.first?["detail"] as? String)?.contains("script_content") == true)
            try await s.get("/audit?actoin=x").expectProblem(400, field: "actoin")
            try await s.get("/audit", as: .token(try await s.token("op", role: "operator").token)).expectProblem(403)
        }
    }

    @Test("Secrets: stored encrypted, given to the sandbox, never answered, logged or audited; patched by merging")
    func secrets() async throws {
        let policies = FileManager.default.temporaryDirectory.appendingPathComponent("confine-secret-policies-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: policies, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: policies) }
        let base = try String(contentsOf: LiveServer.repository.appendingPathComponent("policies/default.yaml"), encoding: .utf8)
        try base.write(to: policies.appendingPathComponent("default.yaml"), atomically: true, encoding: .utf8)
        try base.replacingOccurrences(of: "allow: [TZ]", with: "allow: [TZ, API_*]")
            .write(to: policies.appendingPathComponent("vault.yaml"), atomically: true, encoding: .utf8)
        try await LiveServer.with({ $0.policies = policies.path }) { s in
            let secret = "s3cr3t-\(UUID().uuidString)"
            let made = try await s.post("/jobs", """
                {"name": "uses-key", "script_type": "bash", "script_content": "printf %s \\"$API_KEY\\" | sha256sum | cut -c1-64; echo \\"other=$API_OTHER\\"",
                 "policy": "vault", "secret_environment": {"API_KEY": \(quote(secret)), "API_OTHER": "two"}}
                """)
            #expect(made.status == 200, "\(made)")
            #expect(!made.text.contains(secret))
            #expect(made.object["secret_environment"] as? [String] == ["API_KEY", "API_OTHER"])
            let id = try #require(made.object["id"] as? Int)
            let run = try await s.post("/jobs/\(id)/run?wait=true")
            // The script proves it got the value by its digest (its output is stored in the clear).
            let digest = TokenMint.digest(secret).map { String(format: "%02x", $0) }.joined()
            #expect(run.object["stdout"] as? String == "\(digest)\nother=two\n", "\(run)")
            #expect(try await s.get("/jobs/\(id)").text.contains(secret) == false)
            #expect(try await s.get("/audit").text.contains(secret) == false)
            // Merge: a new value replaces, null removes, the rest stays.
            let patched = try await s.call("PATCH", "/jobs/\(id)", json: #"{"secret_environment": {"API_OTHER": null}}"#)
            #expect(patched.object["secret_environment"] as? [String] == ["API_KEY"], "\(patched)")
            #expect(try await s.post("/jobs/\(id)/run?wait=true").object["stdout"] as? String == "\(digest)\nother=\n")
            // Encrypted at rest: the plain value is nowhere in the database files.
            if let sqlite = s.sqlite {
                for suffix in ["", "-wal"] {
                    let bytes = (try? Data(contentsOf: URL(fileURLWithPath: sqlite.path + suffix))) ?? Data()
                    #expect(bytes.range(of: Data(secret.utf8)) == nil, "plain secret in the database\(suffix)")
                }
            } else {
                let stored = try #require(try await s.store.job(id: Int64(id))).secretEnvironment.values.joined()
                #expect(!stored.contains(secret) && !stored.isEmpty, "sealed in the database")
            }
            // Refusals: a name the policy does not allow, a name in both maps.
            try await s.post("/jobs", #"{"name": "x", "script_type": "bash", "script_content": "true", "secret_environment": {"PASSWORD": "p"}}"#)
                .expectProblem(422, field: "secret_environment.PASSWORD", "not allowed by policy default")
            try await s.post("/jobs", #"{"name": "y", "script_type": "bash", "script_content": "true", "policy": "vault", "environment": {"API_A": "1"}, "secret_environment": {"API_A": "2"}}"#)
                .expectProblem(422, "both")
        }
    }

    @Test("public_routes opens /ready, /docs and the document; /metrics-like switches are refused by name when misspelt")
    func publicRoutes() async throws {
        try await LiveServer.with({ $0.publicRoutes = ["ready", "docs", "openapi"] }) { s in
            #expect(try await s.get("/ready", as: .anonymous).status == 200)
            #expect(try await s.get("/docs", as: .anonymous).status == 200)
            #expect(try await s.get("/openapi.json", as: .anonymous).status == 200)
            try await s.get("/jobs", as: .anonymous).expectProblem(401)
        }
        #expect(throws: ConfigurationError.self) {
            try ServerConfiguration.load(file: nil, environment: ["CONFINE_PUBLIC_ROUTES": "ready,doc"])
        }
        let configuration = try ServerConfiguration.load(file: nil, environment: ["CONFINE_PUBLIC_ROUTES": "ready, docs"])
        #expect(configuration.publicRoutes == ["ready", "docs"])
    }
}
