@testable import API
import Foundation
import Testing
import Wire

/// The docs page and the document open by default and closable, `servers` from the request or
/// `public_url`, HEAD on every GET route, CORS for `cors_origins`, and the version header.
@Suite("HTTP habits")
struct HTTPHabitsTests {
    @Test("/docs, /openapi.json and /openapi.yaml answer without a token; the page has no script and no third-party asset")
    func docsOpenAndOffline() async throws {
        try await LiveServer.with { s in
            let docs = try await s.get("/docs", as: .anonymous)
            #expect(docs.status == 200 && docs.contentType.hasPrefix("text/html"), "\(docs)")
            let page = docs.text
            #expect(!page.contains("<script"), "the docs page runs no script")
            #expect(!page.contains("src=\"http") && !page.contains("href=\"http") && !page.contains("cdn"), "no third-party asset")
            // Rendered from the document: every operation and schema is on the page.
            let doc = try await s.get("/openapi.json", as: .anonymous).object
            let paths = try #require(doc["paths"] as? [String: [String: Any]])
            for (path, item) in paths {
                for method in item.keys where ["get", "post", "patch", "delete"].contains(method) {
                    #expect(page.contains("<span class=\"method\">\(method.uppercased())</span> <code>\(DocsPage.escape(path))</code>"),
                            "\(method) \(path) missing from /docs")
                }
            }
            #expect(page.contains("id=\"schema-Execution\"") && page.contains("id=\"schema-Problem\""))
            #expect(page.contains("Least role: <code>submitter</code>"))
            let csp = try #require(docs.headers["content-security-policy"])
            #expect(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'"))
            #expect(docs.headers["x-frame-options"] == "DENY")
            #expect(try await s.get("/openapi.yaml", as: .anonymous).status == 200)
            // Every other route still needs a token.
            try await s.get("/jobs", as: .anonymous).expectProblem(401)
            try await s.get("/ready", as: .anonymous).expectProblem(401)
        }
    }

    @Test("private_routes closes the docs and the document; a switch both public and private is refused")
    func privateRoutes() async throws {
        try await LiveServer.with({ $0.privateRoutes = ["docs", "openapi"] }) { s in
            try await s.get("/docs", as: .anonymous).expectProblem(401)
            try await s.get("/openapi.json", as: .anonymous).expectProblem(401)
            try await s.get("/openapi.yaml", as: .anonymous).expectProblem(401)
            #expect(try await s.get("/docs").status == 200)
            #expect(try await s.get("/openapi.json").status == 200)
        }
        let closed = try ServerConfiguration.load(file: nil, environment: ["CONFINE_PRIVATE_ROUTES": "docs, openapi"])
        #expect(closed.openRoutes == ["ui"])
        #expect(ServerConfiguration().openRoutes == ["docs", "openapi", "ui"])
        #expect {
            try ServerConfiguration.load(file: nil, environment: ["CONFINE_PRIVATE_ROUTES": "metrics"])
        } throws: { "\($0)".contains("metrics is not open by default") }
        #expect {
            try ServerConfiguration.load(file: nil, environment: ["CONFINE_PRIVATE_ROUTES": "doc"])
        } throws: { "\($0)".contains("did you mean \"docs\"") }
        #expect {
            try ServerConfiguration.load(file: nil, environment: ["CONFINE_PRIVATE_ROUTES": "docs", "CONFINE_PUBLIC_ROUTES": "docs"])
        } throws: { "\($0)".contains("docs is also in public_routes") }
    }

    @Test("The document's servers is the URL the client used, or public_url; YAML and JSON agree")
    func serversFromRequest() async throws {
        try await LiveServer.with { s in
            let doc = try await s.get("/openapi.json", as: .anonymous).object
            let servers = try #require(doc["servers"] as? [[String: Any]])
            #expect(servers.first?["url"] as? String == s.baseURL, "\(servers)")
            let yaml = try await s.get("/openapi.yaml", as: .anonymous).text
            #expect(yaml.contains("servers:\n  - url: \"\(s.baseURL)\"\n"))
            #expect(!yaml.contains("http://127.0.0.1:8000") || s.baseURL == "http://127.0.0.1:8000")
            let proxied = try await s.call("GET", "/openapi.json", headers: ["X-Forwarded-Proto": "https"], as: .anonymous)
            #expect((proxied.object["servers"] as? [[String: Any]])?.first?["url"] as? String
                    == s.baseURL.replacingOccurrences(of: "http://", with: "https://"))
        }
        try await LiveServer.with({ $0.publicURL = "https://confine.example.com/api" }) { s in
            let doc = try await s.get("/openapi.json", as: .anonymous).object
            #expect((doc["servers"] as? [[String: Any]])?.first?["url"] as? String == "https://confine.example.com/api")
            #expect(try await s.get("/openapi.yaml").text.contains("url: \"https://confine.example.com/api\""))
        }
        let configured = try ServerConfiguration.load(file: nil, environment: ["CONFINE_PUBLIC_URL": "https://c.example.com/"])
        #expect(configured.publicURL == "https://c.example.com")
        #expect {
            try ServerConfiguration.load(file: nil, environment: ["CONFINE_PUBLIC_URL": "c.example.com"])
        } throws: { "\($0)".contains("CONFINE_PUBLIC_URL") && "\($0)".contains("http or https URL") }
    }

    @Test("HEAD answers every GET route with its status and headers and no body")
    func head() async throws {
        try await LiveServer.with { s in
            let job = try await s.job("head", "bash", "echo hi")
            let paths = ["/health", "/jobs", "/jobs/\(job)", "/openapi.json", "/docs", "/executions"]
            for path in paths {
                let get = try await s.get(path)
                let head = try await s.call("HEAD", path)
                #expect(head.status == get.status, "HEAD \(path): \(head.status) ≠ \(get.status)")
                #expect(head.body.isEmpty, "HEAD \(path) has a body")
                #expect(head.contentType == get.contentType, "HEAD \(path)")
                if let length = get.headers["content-length"] { #expect(head.headers["content-length"] == length, "HEAD \(path)") }
            }
            let missing = try await s.call("HEAD", "/jobs/999999")
            #expect(missing.status == 404 && missing.body.isEmpty)
            #expect(try await s.call("HEAD", "/jobs", as: .anonymous).status == 401)
            // HEAD of a followed output answers at once: the stream is never started.
            let run = try await s.post("/executions/\(job)/run?wait=true")
            let id = try #require(run.object["id"] as? Int)
            let follow = try await s.call("HEAD", "/executions/\(id)/output?follow=true")
            #expect(follow.status == 200 && follow.contentType.hasPrefix("text/event-stream") && follow.body.isEmpty, "\(follow)")
            // 405's Allow names HEAD beside GET.
            let wrong = try await s.call("PUT", "/jobs")
            #expect(wrong.status == 405 && (wrong.headers["allow"] ?? "").contains("HEAD"), "\(wrong)")
        }
    }

    @Test("CORS: a configured origin's preflight and answers carry the headers; another origin gets none")
    func cors() async throws {
        let origin = "https://ops.example.com"
        try await LiveServer.with({ $0.corsOrigins = [origin] }) { s in
            let preflight = try await s.call("OPTIONS", "/jobs", headers: [
                "Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type",
            ], as: .anonymous)
            #expect(preflight.status == 204, "\(preflight)")
            #expect(preflight.headers["access-control-allow-origin"] == origin)
            #expect(preflight.headers["access-control-allow-methods"]?.contains("POST") == true)
            #expect(preflight.headers["access-control-allow-headers"]?.contains("Authorization") == true)
            let answer = try await s.call("GET", "/jobs", headers: ["Origin": origin])
            #expect(answer.status == 200 && answer.headers["access-control-allow-origin"] == origin)
            #expect(answer.headers["access-control-expose-headers"]?.contains("X-Next-Cursor") == true)
            // A refusal is readable by the page too.
            let refused = try await s.call("GET", "/jobs", headers: ["Origin": origin], as: .anonymous)
            #expect(refused.status == 401 && refused.headers["access-control-allow-origin"] == origin)
            let other = try await s.call("GET", "/jobs", headers: ["Origin": "https://evil.example.com"])
            #expect(other.headers["access-control-allow-origin"] == nil)
            let otherPreflight = try await s.call("OPTIONS", "/jobs", headers: [
                "Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST",
            ], as: .anonymous)
            otherPreflight.expectProblem(403, "cors_origins")
            #expect(otherPreflight.headers["access-control-allow-origin"] == nil)
        }
        // None by default: no CORS header at all.
        try await LiveServer.with { s in
            let answer = try await s.call("GET", "/jobs", headers: ["Origin": origin])
            #expect(answer.headers["access-control-allow-origin"] == nil)
        }
        #expect {
            try ServerConfiguration.load(file: nil, environment: ["CONFINE_CORS_ORIGINS": "https://ops.example.com/path"])
        } throws: { "\($0)".contains("CONFINE_CORS_ORIGINS") }
        #expect(try ServerConfiguration.load(file: nil, environment: ["CONFINE_CORS_ORIGINS": "https://a.example, http://localhost:3000"])
            .corsOrigins == ["https://a.example", "http://localhost:3000"])
    }

    @Test("Every answer names the version: Confine-Version and Server")
    func version() async throws {
        try await LiveServer.with { s in
            for answer in [try await s.get("/health"), try await s.get("/jobs/999999"), try await s.get("/jobs", as: .anonymous)] {
                #expect(answer.headers["confine-version"] == ConfineVersion.current, "\(answer)")
            }
            #expect(try await s.get("/health").headers["server"] == "Confine/\(ConfineVersion.current)")
        }
    }
}
