@testable import API
import Foundation
import Testing

/// The dashboard's files: served from the binary with a strict CSP, the same as `ui/`, no
/// third-party asset, no way for an API value to become markup.
@Suite("Dashboard")
struct DashboardTests {
    static let sources = LiveServer.repository.appendingPathComponent("ui")

    @Test("GET / redirects to /ui/ (302); the page, script, stylesheet and icon answer without a token, with a CSP that forbids inline scripts and framing")
    func served() async throws {
        try await LiveServer.with { s in
            let root = try await s.call("GET", "/", as: .anonymous, followRedirects: false)
            #expect(root.status == 302 && root.headers["location"] == "/ui/", "\(root)")
            for (path, type) in [("/ui/", "text/html"), ("/ui", "text/html"), ("/ui/app.js", "text/javascript"),
                                 ("/ui/style.css", "text/css"), ("/ui/favicon.svg", "image/svg+xml")] {
                let answer = try await s.get(path, as: .anonymous)
                #expect(answer.status == 200 && answer.contentType.hasPrefix(type), "\(path): \(answer)")
                let csp = answer.headers["content-security-policy"] ?? ""
                #expect(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "\(path): \(csp)")
                #expect(csp.contains("frame-ancestors 'none'") && answer.headers["x-frame-options"] == "DENY", "\(path)")
                #expect(answer.headers["x-content-type-options"] == "nosniff", "\(path)")
                // The ETag answers 304 to a browser that has the file.
                let etag = try #require(answer.headers["etag"], "\(path)")
                let again = try await s.call("GET", path, headers: ["If-None-Match": etag], as: .anonymous)
                #expect(again.status == 304 && again.body.isEmpty, "\(path): \(again)")
            }
            try await s.get("/ui/secrets.txt", as: .anonymous).expectProblem(404, "no dashboard file")
            try await s.get("/ui/%2E%2E%2Fadmin.token", as: .anonymous).expectProblem(404)
        }
    }

    @Test("private_routes: [ui] closes the dashboard's files; the redirect stays")
    func closable() async throws {
        try await LiveServer.with({ $0.privateRoutes = ["ui"] }) { s in
            try await s.get("/ui/", as: .anonymous).expectProblem(401)
            try await s.get("/ui/app.js", as: .anonymous).expectProblem(401)
            #expect(try await s.get("/ui/app.js").status == 200)
        }
    }

    @Test("The files compiled in are those of ui/ (scripts/embed-ui.py was run after the last edit)")
    func embeddedMatchesSources() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.sources.path).sorted()
        #expect(names == DashboardAssets.files.keys.sorted(), "ui/ has \(names); run make ui")
        for name in names {
            let text = try String(contentsOf: Self.sources.appendingPathComponent(name), encoding: .utf8)
            #expect(DashboardAssets.files[name]?.text == text, "\(name) differs from ui/\(name): run make ui")
        }
    }

    @Test("The script inserts API values as text only and fetches nothing from elsewhere; the page has no inline script or style")
    func safeByConstruction() throws {
        let script = try #require(DashboardAssets.files["app.js"]?.text)
        for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute(\"on",
                     "localStorage", "document.cookie"] {
            #expect(!script.contains(sink), "app.js uses \(sink)")
        }
        #expect(script.contains("sessionStorage"), "the token is kept in the tab's session storage")
        for file in DashboardAssets.files.values {
            #expect(!file.text.contains("http://") && !file.text.contains("https://") || file.type.hasPrefix("image/svg"),
                    "no absolute URL: nothing is fetched from another origin")
        }
        let page = try #require(DashboardAssets.files["index.html"]?.text)
        #expect(!page.contains("<script>") && !page.contains(" style=") && !page.contains("<style"), "no inline script or style")
        let svg = try #require(DashboardAssets.files["favicon.svg"]?.text)
        #expect(!svg.contains("<script") && !svg.contains("href=\"http"))
    }
}
