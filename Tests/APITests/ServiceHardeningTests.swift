import API
import Foundation
import Testing

/// The service's hardening: identities as exact bytes, name limits, secrets that follow their
/// script, layered limits, the priority ceiling.
@Suite("Service hardening")
struct ServiceHardeningTests {
    @Test("Tenants are exact bytes: a token of tenant \"jose\\u{301}\" cannot read, run, patch or find by name the jobs of \"jos\\u{e9}\"")
    func canonicallyEquivalentTenants() async throws {
        try await LiveServer.with { s in
            let composed = "jos\u{e9}", decomposed = "jose\u{301}"
            #expect(composed == decomposed, "Swift's == says they are equal; identities must not use it")
            let owner = try await s.token("owner", role: "submitter", extra: ", \"tenant\": \(quote(composed))").token
            let other = try await s.token("other", role: "submitter", extra: ", \"tenant\": \(quote(decomposed))").token
            let job = try await s.job("secret-job", "bash", "echo mine", as: .token(owner))
            try await s.get("/jobs/\(job)", as: .token(other)).expectProblem(404)
            try await s.get("/jobs/by_name/secret-job", as: .token(other)).expectProblem(404)
            try await s.call("PATCH", "/jobs/\(job)", json: #"{"script_content": "id"}"#, as: .token(other)).expectProblem(404)
            try await s.post("/executions/\(job)/run", as: .token(other)).expectProblem(404)
            try await s.get("/executions/job/\(job)", as: .token(other)).expectProblem(404)
            #expect(try await s.get("/jobs", as: .token(other)).array.isEmpty)
            // The owner still sees it, and the tenant is answered with the bytes it was given.
            let mine = try await s.get("/jobs/\(job)", as: .token(owner))
            #expect(mine.status == 200)
            #expect((mine.object["tenant"] as? String).map { Array($0.utf8) } == Array(composed.utf8))
            // A job name spelled the other way is another name.
            let twin = try await s.job("caf\u{e9}", "bash", "true", as: .token(owner))
            let twin2 = try await s.job("cafe\u{301}", "bash", "true", as: .token(owner))
            #expect(twin != twin2)
            let byName = try await s.get("/jobs/by_name/cafe%CC%81", as: .token(owner))
            #expect(byName.object["id"] as? Int == twin2, "\(byName)")
        }
    }

    @Test("Names count bytes and code points, and refuse control characters: job names, token names, tenants")
    func nameLimits() async throws {
        try await LiveServer.with { s in
            let zalgo = "a" + String(repeating: "\u{301}", count: 400)
            #expect(zalgo.count == 1)
            try await s.post("/jobs", #"{"name": \#(quote(zalgo)), "script_type": "bash", "script_content": "true"}"#)
                .expectProblem(422, field: "name", "401 characters")
            try await s.post("/jobs", #"{"name": "a\u0085b", "script_type": "bash", "script_content": "true"}"#)
                .expectProblem(422, field: "name", "U+0085")
            try await s.post("/jobs", #"{"name": "a\u2028b", "script_type": "bash", "script_content": "true"}"#)
                .expectProblem(422, field: "name", "U+2028")
            try await s.post("/tokens", #"{"name": "t", "role": "viewer", "tenant": "a\u0007"}"#).expectProblem(422, field: "tenant", "control")
            try await s.post("/tokens", #"{"name": "t", "role": "viewer", "tenant": \#(quote(String(repeating: "\u{1F600}", count: 101)))}"#)
                .expectProblem(422, field: "tenant", "101 characters")
            try await s.post("/tokens", #"{"name": "t", "role": "viewer", "tenant": ""}"#).expectProblem(422, field: "tenant", "empty")
            // 200 four-byte characters fit in a job name: 800 bytes.
            _ = try await s.job(String(repeating: "\u{1F600}", count: 200), "bash", "true")
        }
    }

    @Test("A PATCH that changes the script, type or policy clears the secrets it does not resupply, and says so; other changes keep them")
    func secretsFollowTheScript() async throws {
        try await LiveServer.with { s in
            let job = try await s.job("with-secret", "bash", #"echo "$HTTP_PROXY""#,
                                      extra: #", "policy": "networked", "secret_environment": {"HTTP_PROXY": "hunter2"}"#)
            // A rename keeps the secret.
            let renamed = try await s.call("PATCH", "/jobs/\(job)", json: #"{"name": "renamed"}"#)
            #expect(renamed.object["secret_environment"] as? [String] == ["HTTP_PROXY"], "\(renamed)")
            #expect(renamed.object["secret_environment_cleared"] == nil)
            // A new script clears it.
            let changed = try await s.call("PATCH", "/jobs/\(job)", json: #"{"script_content": "env"}"#)
            #expect(changed.status == 200, "\(changed)")
            #expect(changed.object["secret_environment"] as? [String] == [], "\(changed)")
            #expect(changed.object["secret_environment_cleared"] as? [String] == ["HTTP_PROXY"], "\(changed)")
            let run = try await s.post("/executions/\(job)/run?wait=true")
            #expect(!(run.object["stdout"] as? String ?? "").contains("hunter2"), "\(run)")
            // Resupplied in the same request: kept, nothing cleared.
            _ = try await s.call("PATCH", "/jobs/\(job)", json: #"{"secret_environment": {"HTTP_PROXY": "x"}}"#)
            let again = try await s.call("PATCH", "/jobs/\(job)", json: #"{"script_content": "true", "secret_environment": {"HTTP_PROXY": "y"}}"#)
            #expect(again.status == 200, "\(again)")
            #expect(again.object["secret_environment"] as? [String] == ["HTTP_PROXY"] && again.object["secret_environment_cleared"] == nil, "\(again)")
        }
    }

    @Test("Job limits, then run limits, each only tighter: a job at 128MiB runs at 64MiB, not 200MiB")
    func layeredLimits() async throws {
        try await LiveServer.with { s in
            let job = try await s.job("layered", "bash", "true", extra: #", "limits": {"memory": "128MiB"}"#)
            let tighter = try await s.post("/executions/\(job)/run?wait=true", #"{"limits": {"memory": "64MiB"}}"#)
            #expect(tighter.status == 200 && tighter.object["status"] as? String == "SUCCESS", "\(tighter)")
            let looser = try await s.post("/executions/\(job)/run", #"{"limits": {"memory": "200MiB"}}"#)
            #expect(looser.status == 422, "\(looser)")
            #expect((looser.object["detail"] as? String ?? "").contains("memory"), "\(looser)")
        }
    }

    @Test("Priority is not a weapon: a submitter's runs may not ask more than its token's ceiling (0 by default)")
    func priorityCeiling() async throws {
        try await LiveServer.with { s in
            let plain = try await s.token("plain", role: "submitter").token
            let job = try await s.job("p", "bash", "true", extra: #", "concurrency": "allow""#, as: .token(plain))
            let refused = try await s.post("/executions/\(job)/run", #"{"priority": 1}"#, as: .token(plain))
            refused.expectProblem(429, field: "priority", "ceiling 0")
            #expect(refused.object["quota"] as? String == "max_priority")
            #expect(try await s.post("/executions/\(job)/run", #"{"priority": -5}"#, as: .token(plain)).status == 200)
            let (_, raised) = try await s.token("raised", role: "submitter", extra: #", "tenant": "plain", "max_priority": 10"#)
            #expect(try await s.post("/executions/\(job)/run", #"{"priority": 10}"#, as: .token(raised)).status == 200)
            try await s.post("/executions/\(job)/run", #"{"priority": 11}"#, as: .token(raised)).expectProblem(429, field: "priority")
            let whoami = try await s.get("/whoami", as: .token(raised)).object
            #expect(whoami["max_priority"] as? Int == 10 && whoami["priority_ceiling"] as? Int == 10)
            try await s.post("/tokens", #"{"name": "x", "role": "submitter", "max_priority": 101}"#).expectProblem(422, field: "max_priority")
        }
    }
}
