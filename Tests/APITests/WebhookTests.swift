import ConfineTestSupport
import Crypto
import Foundation
import Glibc
import Testing
import Wire

/// Completion webhooks delivered to a loopback receiver: signed (the test verifies the
/// signature itself), retried after 500 twice with one delivery id, recorded attempt by
/// attempt; SSRF refused by default; a delivery pending across a restart of the server.
@Suite("Webhooks")
struct WebhookTests {
    /// Whether `header` (`t=<unix>,v1=<hex>`) is HMAC-SHA256 of "t.body" keyed with `secret`.
    static func verify(_ header: String, body: Data, secret: String) -> Bool {
        var t: String?, v1: String?
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { return false }
            if pair[0] == "t" { t = pair[1] } else if pair[0] == "v1" { v1 = pair[1] }
        }
        guard let t, let v1, Int64(t) != nil else { return false }
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(t).".utf8) + body, using: SymmetricKey(data: Data(secret.utf8)))
        return mac.map { String(format: "%02x", $0) }.joined() == v1
    }

    @Test("A run's end is POSTed signed to the callback, retried after 500 twice with the same delivery id, every attempt listed")
    func deliveredAndRetried() async throws {
        let receiver = WebhookReceiver(failFirst: 2)
        try await receiver.start()
        defer { Task { await receiver.stop() } }
        try await LiveServer.with({ c in
            c.engine.webhooks.allowPrivate = true
            c.engine.webhooks.firstRetryDelay = .milliseconds(200)
        }) { s in
            let made = try await s.post("/webhook-secret")
            #expect(made.status == 201, "\(made)")
            let secret = try #require(made.object["secret"] as? String)
            #expect(try await s.get("/webhook-secret").object["secret"] == nil, "the secret is shown once")
            let job = try await s.job("notify", "bash", "echo hello", extra: #", "callback": {"url": "\#(receiver.url)", "events": ["finished"]}"#)
            let run = try await s.post("/executions/\(job)/run", "{}")
            let id = try #require(run.object["execution_id"] as? Int, "\(run)")
            _ = try await s.waitFinal(id)
            let received = try await receiver.wait(for: 3)
            let ids = Set(received.map { $0.headers["x-confine-delivery"] ?? "" })
            #expect(ids.count == 1 && !(ids.first ?? "").isEmpty, "one delivery id across retries: \(ids)")
            for request in received {
                #expect(request.headers["x-confine-event"] == "finished")
                #expect(request.headers["content-type"] == "application/json")
                let signature = try #require(request.headers["x-confine-signature"])
                #expect(Self.verify(signature, body: request.body, secret: secret), "signature \(signature) does not verify")
                #expect(!Self.verify(signature, body: request.body + Data(" ".utf8), secret: secret), "a changed body must not verify")
                let payload = try JSONDecoder().decode(WireWebhookPayload.self, from: request.body)
                #expect(payload.event == "finished" && payload.execution.id == Int64(id) && payload.execution.status == "SUCCESS")
                #expect(payload.execution.stdout == nil && payload.execution.stdout_bytes == 6, "no output body, its byte count")
                #expect(payload.output_url == "/executions/\(id)/output")
            }
            var listed: [[String: Any]] = []
            for _ in 0..<100 {
                listed = try await s.get("/executions/\(id)/deliveries").object["deliveries"] as? [[String: Any]] ?? []
                if listed.first?["status"] as? String == "delivered" { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let delivery = try #require(listed.first)
            #expect(listed.count == 1 && delivery["status"] as? String == "delivered", "\(listed)")
            #expect(delivery["id"] as? String == ids.first)
            let attempts = try #require(delivery["attempts"] as? [[String: Any]])
            #expect(attempts.map { $0["status_code"] as? Int } == [500, 500, 200])
            #expect(attempts.allSatisfy { ($0["duration_ms"] as? Int ?? -1) >= 0 })

            let other = try await s.token("other-viewer", role: "viewer", extra: #", "tenant": "elsewhere""#).token
            try await s.get("/executions/\(id)/deliveries", as: .token(other)).expectProblem(404)
        }
    }

    @Test("By default a callback to a loopback, private or metadata address is refused and recorded so")
    func ssrfRefused() async throws {
        try await LiveServer.with { s in
            _ = try await s.post("/webhook-secret")
            for (url, words) in [("http://127.0.0.1:9/x", "loopback"), ("http://169.254.169.254/latest", "metadata"),
                                 ("http://10.1.2.3/x", "private"), ("http://[::1]:9/x", "loopback")] {
                let run = try await s.post("/executions", #"{"script_type": "bash", "script_content": "true", "callback_url": "\#(url)"}"#)
                let id = try #require(run.object["execution_id"] as? Int, "\(run)")
                _ = try await s.waitFinal(id)
                var delivery: [String: Any] = [:]
                for _ in 0..<100 {
                    delivery = (try await s.get("/executions/\(id)/deliveries").object["deliveries"] as? [[String: Any]])?.first ?? [:]
                    if delivery["status"] as? String == "refused" { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(delivery["status"] as? String == "refused", "\(url): \(delivery)")
                let error = ((delivery["attempts"] as? [[String: Any]])?.first?["error"] as? String) ?? ""
                #expect(error.contains(words) && error.contains("webhooks.allow_private"), "\(url): \(error)")
            }
        }
    }

    @Test("Invalid callbacks are 422 naming the member")
    func validation() async throws {
        try await LiveServer.with { s in
            func job(_ extra: String) async throws -> HTTPAnswer {
                try await s.post("/jobs", #"{"name": "cb-\#(UUID().uuidString.prefix(6))", "script_type": "bash", "script_content": "true"\#(extra)}"#)
            }
            try await job(#", "callback": {"url": "ftp://example.com/x"}"#).expectProblem(422, field: "callback.url", "http or https")
            try await job(#", "callback": {"url": "https://user:pw@example.com/x"}"#).expectProblem(422, field: "callback.url", "credentials")
            try await job(#", "callback": {"url": "https://example.com/x", "events": ["started"]}"#)
                .expectProblem(422, field: "callback.events[0]", "unknown event")
            try await job(#", "callback": {"events": ["finished"]}"#).expectProblem(422, field: "callback.url", "required")
            try await job(#", "callback": {"url": "https://example.com/a"}, "callback_url": "https://example.com/b""#)
                .expectProblem(422, field: "callback_url", "not both")
            try await job(#", "callback_url": "not a url""#).expectProblem(422, field: "callback_url")
            let ok = try await job(#", "callback_url": "https://example.com/hook""#)
            #expect((ok.object["callback"] as? [String: Any])?["events"] as? [String] == ["finished"], "\(ok)")
            let id = try #require(ok.object["id"] as? Int)
            let removed = try await s.call("PATCH", "/jobs/\(id)", json: #"{"callback": null}"#)
            #expect(removed.object["callback"] is NSNull, "\(removed)")
            try await s.post("/webhook-secret", as: .anonymous).expectProblem(401)
        }
    }

    @Test("A delivery pending when the server stops is delivered after its restart, with the same id",
          .enabled(if: ServerProcess.available))
    func survivesRestart() async throws {
        let port = try FreePort.take()
        let server = try await ServerProcess(policies: LiveServer.repository.appendingPathComponent("policies").path,
                                             extraConfig: "webhooks:\n  allow_private: true\n  first_retry_delay: 1s\n")
        defer { server.stop() }
        _ = try await server.call("POST", "/webhook-secret")
        let created = try await server.call("POST", "/jobs", json: #"""
            {"name": "restart-notify", "script_type": "bash", "script_content": "true", "callback_url": "http://127.0.0.1:\#(port)/hook"}
            """#)
        let job = try #require(created.object["id"] as? Int, "\(created)")
        let run = try await server.call("POST", "/executions/\(job)/run?wait=true")
        let id = try #require(run.object["id"] as? Int, "\(run)")
        // Nobody listens yet: the first attempt fails (connection refused) and the delivery stays pending.
        var first: [String: Any] = [:]
        for _ in 0..<200 {
            first = (try await server.call("GET", "/executions/\(id)/deliveries").object["deliveries"] as? [[String: Any]])?.first ?? [:]
            if ((first["attempts"] as? [Any])?.count ?? 0) >= 1 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(first["status"] as? String == "pending", "\(first)")
        let deliveryID = try #require(first["id"] as? String)
        #expect(kill(server.pid, SIGKILL) == 0)
        try await server.server.restart()
        let receiver = WebhookReceiver(failFirst: 0)
        try await receiver.start(port: port)
        defer { Task { await receiver.stop() } }
        let received = try await receiver.wait(for: 1, seconds: 60)
        #expect(received.first?.headers["x-confine-delivery"] == deliveryID)
        var last: [String: Any] = [:]
        for _ in 0..<100 {
            last = (try await server.call("GET", "/executions/\(id)/deliveries").object["deliveries"] as? [[String: Any]])?.first ?? [:]
            if last["status"] as? String == "delivered" { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(last["status"] as? String == "delivered", "\(last)")
    }
}

/// A loopback port nobody listens on (taken from the kernel, then released).
enum FreePort {
    static func take() throws -> Int { try ConfineServerProcess.freePort() }
}
