import API
import Foundation
import Sandbox
import Testing

/// Health, readiness, policies, runtimes, the OpenAPI document, the docs page — and the
/// document and the router agreeing route for route.
@Suite("Meta routes and the OpenAPI document")
struct MetaTests {
    @Test("/ready checks the store, the sandbox, its spawner, the cgroups and the isolation; /runtimes and /policies show effective values")
    func readyRuntimesPolicies() async throws {
        try await LiveServer.with { s in
            let ready = try await s.get("/ready")
            #expect(ready.status == 200, "\(ready)")
            #expect(ready.object["status"] as? String == "ready")
            #expect((ready.object["checks"] as? [String: String])?.keys.sorted() == ["cgroups", "isolation", "sandbox", "spawner", "store"])
            #expect((ready.object["checks"] as? [String: String])?.values.allSatisfy { $0 == "ok" } == true, "\(ready)")
            #expect(ready.object["weaker_isolation"] as? [String] == [], "full isolation here")

            let runtimes = try await s.get("/runtimes").array
            #expect(runtimes.compactMap { $0["script_type"] as? String } == ["bash", "python"])
            #expect(runtimes.first?["command"] as? [String] == ["/bin/bash"])

            let policies = try await s.get("/policies").array
            #expect(policies.compactMap { $0["name"] as? String } == ["default", "networked", "strict"])
            let strict = try await s.get("/policies/strict").object
            #expect(strict["name"] as? String == "strict")
            let limits = try #require(strict["limits"] as? [String: Any])
            #expect(limits.count == LimitName.allCases.count && limits.values.allSatisfy { $0 is String || $0 is NSNull }, "\(limits)")
            #expect((strict["yaml"] as? String)?.contains("limits:") == true)
            try await s.get("/policies/strikt").expectProblem(404, "did you mean \"strict\"")
        }
    }

    @Test("POST /policies/reload: a new file comes into force; a broken folder is refused with the file named, nothing changes")
    func reload() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("confine-policies-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let repoPolicies = LiveServer.repository.appendingPathComponent("policies")
        try FileManager.default.copyItem(at: repoPolicies.appendingPathComponent("default.yaml"),
                                         to: folder.appendingPathComponent("default.yaml"))
        try await LiveServer.with({ $0.policies = folder.path }) { s in
            #expect(try await s.get("/policies").array.compactMap { $0["name"] as? String } == ["default"])
            try await s.post("/jobs", #"{"name": "later", "script_type": "bash", "script_content": "true", "policy": "strict"}"#)
                .expectProblem(422, field: "policy", "strict")
            try FileManager.default.copyItem(at: repoPolicies.appendingPathComponent("strict.yaml"),
                                             to: folder.appendingPathComponent("strict.yaml"))
            let reloaded = try await s.post("/policies/reload")
            #expect(reloaded.status == 200, "\(reloaded)")
            #expect(reloaded.object["policies"] as? [String] == ["default", "strict"])
            _ = try await s.job("later", "bash", "true", extra: #", "policy": "strict""#)

            try "limits:\n  memroy: 1MiB\n".write(to: folder.appendingPathComponent("broken.yaml"), atomically: true, encoding: .utf8)
            try await s.post("/policies/reload").expectProblem(422, "broken.yaml", "memroy", "previous policies stay in force")
            #expect(try await s.get("/policies").array.compactMap { $0["name"] as? String } == ["default", "strict"])
        }
    }

    @Test("The OpenAPI document is served as JSON and YAML, and /docs loads it")
    func documents() async throws {
        try await LiveServer.with { s in
            let json = try await s.get("/openapi.json")
            #expect(json.status == 200)
            #expect((json.object["openapi"] as? String)?.hasPrefix("3.1") == true)
            let yaml = try await s.get("/openapi.yaml")
            #expect(yaml.status == 200 && yaml.text.contains("openapi: 3.1"))
            let docs = try await s.get("/docs")
            #expect(docs.contentType.hasPrefix("text/html"))
            #expect(docs.text.contains("/openapi.json"))
        }
    }

    @Test("Every route of the OpenAPI document is served, and every served route is documented")
    func documentMatchesRouter() async throws {
        try await LiveServer.with { s in
            let doc = try await s.get("/openapi.json").object
            let paths = try #require(doc["paths"] as? [String: [String: Any]])
            var documented = Set<String>()
            for (path, item) in paths {
                for method in item.keys where ["get", "post", "put", "patch", "delete"].contains(method) {
                    documented.insert("\(method.uppercased()) \(path)")
                }
            }
            let served = Set(s.routes.map { "\($0.method) \($0.path)" })
            #expect(documented.subtracting(served).sorted() == [], "documented but not served")
            #expect(served.subtracting(documented).sorted() == [], "served but not documented")
        }
    }
}
