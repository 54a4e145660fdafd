import API
import Foundation
import Testing

/// `GET /metrics`: the Prometheus text format, with values that move as executions run and
/// requests are answered. Each test server has its own registry, so values are exact.
///
/// Counters of an execution's end move just after its outcome is stored (which is what a
/// client sees first), so tests wait for the counters themselves before comparing.
@Suite("Metrics")
struct MetricsTests {
    @Test("GET /metrics: the exposition format, every engine metric present from the start at its initial value")
    func exposition() async throws {
        try await LiveServer.with { s in
            let answer = try await s.get("/metrics")
            #expect(answer.status == 200, "\(answer)")
            #expect(answer.contentType == "text/plain; version=0.0.4; charset=utf-8")
            let m = try Exposition(answer.text)
            let types = [
                "confine_executions_started_total": "counter", "confine_executions_finished_total": "counter",
                "confine_queue_depth": "gauge", "confine_executions_running": "gauge", "confine_workers_busy": "gauge",
                "confine_workers": "gauge", "confine_output_bytes_total": "counter", "confine_oom_kills_total": "counter",
                "confine_sandbox_launch_duration_seconds": "histogram", "confine_execution_duration_seconds": "histogram",
                "confine_store_write_duration_seconds": "histogram",
            ]
            for (name, type) in types { #expect(m.types[name] == type, "\(name)") }
            #expect(m["confine_executions_started_total"] == 0)
            #expect(m["confine_executions_finished_total", ["status": "SUCCESS", "verdict": "exited"]] == 0)
            #expect(m["confine_executions_finished_total", ["status": "TIMED_OUT", "verdict": "wall_timeout"]] == 0)
            #expect(m.sum("confine_executions_finished_total") == 0)
            #expect(m["confine_queue_depth"] == 0)
            #expect(m["confine_executions_running"] == 0)
            #expect(m["confine_workers_busy"] == 0)
            #expect(m["confine_workers"] == 2)
            #expect(m["confine_output_bytes_total", ["stream": "stdout"]] == 0)
            #expect(m["confine_oom_kills_total"] == 0)
            #expect(m["confine_execution_duration_seconds_count"] == 0)
            // Buckets in seconds, in the ranges the values live in.
            #expect(m["confine_sandbox_launch_duration_seconds_bucket", ["le": "0.001"]] == 0)
            #expect(m["confine_execution_duration_seconds_bucket", ["le": "600.0"]] == 0)
            #expect(m["confine_execution_duration_seconds_bucket", ["le": "+Inf"]] == 0)
            // The check for executions a crash left RUNNING, made once at start, is a measured write.
            #expect(m["confine_store_write_duration_seconds_count", ["operation": "interrupt_running"]] == 1)
        }
    }

    @Test("Executions move the counters: started, finished by status and verdict, output bytes, OOM kills, histograms")
    func executionCounters() async throws {
        try await LiveServer.with { s in
            let succeeding = try await s.job("succeeding", "bash", "echo hello; printf 'oops' >&2")
            let failing = try await s.job("failing", "bash", "exit 3")
            let sleeping = try await s.job("sleeping", "bash", "sleep 10")
            let hog = try await s.job("hog", "python", "x = bytearray(200 << 20)")
            let runs = [
                try await s.post("/executions/\(succeeding)/run?wait=true"),
                try await s.post("/executions/\(failing)/run?wait=true"),
                try await s.post("/executions/\(sleeping)/run?wait=true", #"{"limits": {"wall_time": "300ms"}}"#),
                try await s.post("/executions/\(hog)/run?wait=true", #"{"limits": {"memory": "32MiB"}}"#),
            ]
            #expect(runs.map { $0.object["status"] as? String } == ["SUCCESS", "FAILED", "TIMED_OUT", "FAILED"], "\(runs)")
            #expect(runs.map { $0.object["verdict"] as? String } == ["exited", "exited", "wall_timeout", "memory_limit"])

            let m = try await s.metrics { $0.sum("confine_executions_finished_total") == 4 && $0["confine_workers_busy"] == 0 }
            #expect(m["confine_executions_started_total"] == 4)
            #expect(m["confine_executions_finished_total", ["status": "SUCCESS", "verdict": "exited"]] == 1)
            #expect(m["confine_executions_finished_total", ["status": "FAILED", "verdict": "exited"]] == 1)
            #expect(m["confine_executions_finished_total", ["status": "TIMED_OUT", "verdict": "wall_timeout"]] == 1)
            #expect(m["confine_executions_finished_total", ["status": "FAILED", "verdict": "memory_limit"]] == 1)
            #expect(m["confine_output_bytes_total", ["stream": "stdout"]] == 6)
            #expect(m["confine_output_bytes_total", ["stream": "stderr"]] == 4)
            #expect((m["confine_oom_kills_total"] ?? 0) >= 1, "the hog was killed by the OOM killer")
            #expect(m["confine_queue_depth"] == 0)
            #expect(m["confine_executions_running"] == 0)
            // Every run had its sandbox set up: a launch and a duration each.
            #expect(m["confine_sandbox_launch_duration_seconds_count"] == 4)
            #expect((m["confine_sandbox_launch_duration_seconds_sum"] ?? 0) > 0)
            #expect(m["confine_execution_duration_seconds_count"] == 4)
            #expect(m["confine_execution_duration_seconds_bucket", ["le": "+Inf"]] == 4)
            // The sleeper ran until its 300 ms deadline killed it.
            #expect((m["confine_execution_duration_seconds_sum"] ?? 0) >= 0.3)
            // The store's writes: each job created, each execution enqueued and finished once.
            #expect(m["confine_store_write_duration_seconds_count", ["operation": "create_job"]] == 4)
            #expect(m["confine_store_write_duration_seconds_count", ["operation": "enqueue"]] == 4)
            #expect(m["confine_store_write_duration_seconds_count", ["operation": "finish"]] == 4)
            #expect((m["confine_store_write_duration_seconds_count", ["operation": "claim"]] ?? 0) >= 4)
        }
    }

    @Test("While an execution sleeps: running and busy gauges, queue depth; cancelling moves them back")
    func gauges() async throws {
        try await LiveServer.with({ $0.engine.workers = 1 }) { s in
            let job = try await s.job("sleeper", "bash", "sleep 30", extra: #", "concurrency": "allow""#)
            let first = try #require(try await s.post("/executions/\(job)/run").object["execution_id"] as? Int)
            var m = try await s.metrics { $0["confine_executions_running"] == 1 }
            #expect(m["confine_workers_busy"] == 1)
            #expect(m["confine_workers"] == 1)
            #expect(m["confine_executions_started_total"] == 1)
            #expect(m["confine_queue_depth"] == 0)

            // The only worker is busy: the next one waits in the queue.
            let second = try #require(try await s.post("/executions/\(job)/run").object["execution_id"] as? Int)
            m = try await s.metrics()
            #expect(m["confine_queue_depth"] == 1)
            #expect(m["confine_executions_running"] == 1)
            #expect(m["confine_executions_started_total"] == 1)

            // Cancelled while PENDING: off the queue, finished as CANCELLED without starting.
            #expect(try await s.post("/executions/\(second)/cancel").object["status"] as? String == "CANCELLED")
            m = try await s.metrics()
            #expect(m["confine_queue_depth"] == 0)
            #expect(m["confine_executions_finished_total", ["status": "CANCELLED", "verdict": "cancelled"]] == 1)
            #expect(m["confine_executions_started_total"] == 1)

            #expect(try await s.post("/executions/\(first)/cancel").status < 300)
            m = try await s.metrics {
                $0["confine_executions_finished_total", ["status": "CANCELLED", "verdict": "cancelled"]] == 2
                    && $0["confine_workers_busy"] == 0
            }
            #expect(m["confine_executions_running"] == 0)
            #expect(m["confine_executions_started_total"] == 1)
            #expect(m.sum("confine_executions_finished_total") == 2)
            #expect(m["confine_execution_duration_seconds_count"] == 1)
        }
    }

    @Test("After a restart the queue depth counts the executions left PENDING in the store")
    func queueDepthAfterRestart() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("confine-metrics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let database = folder.appendingPathComponent("confine.sqlite").path
        let setUp: (inout ServerConfiguration) -> Void = {
            $0.database = database
            $0.engine.workers = 1
        }
        try await LiveServer.with(setUp) { s in
            let job = try await s.job("sleeper", "bash", "sleep 30", extra: #", "concurrency": "allow""#)
            for _ in 0..<3 { try #require(try await s.post("/executions/\(job)/run").status == 200) }
            let m = try await s.metrics { $0["confine_executions_running"] == 1 }
            #expect(m["confine_queue_depth"] == 2)
        }
        // The first server stopped: its running execution was interrupted, two stay PENDING.
        try await LiveServer.with(setUp) { s in
            // Its one worker takes one of them; the other is still counted.
            let m = try await s.metrics { $0["confine_executions_running"] == 1 }
            #expect(m["confine_executions_started_total"] == 1)
            #expect(m["confine_queue_depth"] == 1)
            #expect(m.sum("confine_executions_finished_total") == 0)
        }
    }

    @Test("HTTP requests: counted by route template, method and status, unknown paths under one label, with durations")
    func httpRequests() async throws {
        try await LiveServer.with { s in
            let job = try await s.job("known", "bash", "true")
            #expect(try await s.get("/jobs/\(job)").status == 200)
            #expect(try await s.get("/jobs/\(job)").status == 200)
            #expect(try await s.get("/jobs/999999").status == 404)
            #expect(try await s.get("/jobs/abc").status == 400)
            #expect(try await s.get("/no/such/path").status == 404)
            #expect(try await s.call("PUT", "/jobs/\(job)").status == 405)

            var m = try await s.metrics()
            let requests = "confine_http_requests_total"
            #expect(m.types[requests] == "counter")
            #expect(m.types["confine_http_request_duration_seconds"] == "histogram")
            #expect(m[requests, ["route": "/jobs", "method": "POST", "status": "200"]] == 1)
            #expect(m[requests, ["route": "/jobs/{id}", "method": "GET", "status": "200"]] == 2)
            #expect(m[requests, ["route": "/jobs/{id}", "method": "GET", "status": "404"]] == 1)
            #expect(m[requests, ["route": "/jobs/{id}", "method": "GET", "status": "400"]] == 1)
            #expect(m[requests, ["route": "unmatched", "method": "GET", "status": "404"]] == 1)
            #expect(m[requests, ["route": "unmatched", "method": "PUT", "status": "405"]] == 1)
            #expect(m["confine_http_request_duration_seconds_count", ["route": "/jobs/{id}", "method": "GET"]] == 4)
            // Routes are templates of the document (or `unmatched`), never concrete paths.
            let templates = Set(s.routes.map(\.path))
            let routes = Set(m.samples.filter { $0.name.hasPrefix("confine_http_") }.compactMap { $0.labels["route"] })
            #expect(routes.subtracting(templates) == ["unmatched"], "\(routes)")
            #expect(m.sum(requests) == 7)

            // This scrape was counted too, and the next request moves the histogram.
            #expect(try await s.get("/jobs/\(job)").status == 200)
            m = try await s.metrics()
            #expect(m[requests, ["route": "/metrics", "method": "GET", "status": "200"]] == 1)
            #expect(m[requests, ["route": "/jobs/{id}", "method": "GET", "status": "200"]] == 3)
            #expect(m["confine_http_request_duration_seconds_count", ["route": "/jobs/{id}", "method": "GET"]] == 5)
            #expect(m["confine_http_request_duration_seconds_bucket", ["route": "/jobs/{id}", "method": "GET", "le": "+Inf"]] == 5)
        }
    }
}

extension LiveServer {
    /// The server's metrics now, or, with `until`, as soon as they satisfy it (within 30 s).
    func metrics(until condition: ((Exposition) -> Bool)? = nil) async throws -> Exposition {
        let deadline = Date().addingTimeInterval(30)
        while true {
            let answer = try await get("/metrics")
            try #require(answer.status == 200, "\(answer)")
            let exposition = try Exposition(answer.text)
            guard let condition else { return exposition }
            if condition(exposition) { return exposition }
            if Date() > deadline { throw TestFailure("the metrics never reached the expected state:\n\(answer.text)") }
            try await Task.sleep(for: .milliseconds(30))
        }
    }
}

/// The Prometheus text exposition format, parsed: `# TYPE` lines and samples (`name{labels}
/// value`). Any other line is refused, so a malformed exposition fails the test.
struct Exposition {
    struct Sample {
        let name: String
        let labels: [String: String]
        let value: Double
    }
    var samples: [Sample] = []
    /// Metric family → its type (`counter`, `gauge`, `histogram`, …).
    var types: [String: String] = [:]

    init(_ text: String) throws {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4 else { throw TestFailure("bad TYPE line: \(line)") }
                types[String(parts[2])] = String(parts[3])
            } else if line.hasPrefix("#") {
                continue  // HELP and comments
            } else {
                samples.append(try Self.sample(Substring(line)))
            }
        }
    }

    /// The value of the sample with exactly these labels.
    subscript(name: String, labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    /// The sum of every sample of `name`, whatever its labels.
    func sum(_ name: String) -> Double {
        samples.filter { $0.name == name }.reduce(0) { $0 + $1.value }
    }

    private static func sample(_ line: Substring) throws -> Sample {
        var rest = line[...]
        let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }
        guard !name.isEmpty else { throw TestFailure("no metric name: \(line)") }
        rest = rest.dropFirst(name.count)
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                let key = rest.prefix { $0 != "=" }
                rest = rest.dropFirst(key.count)
                guard rest.hasPrefix("=\"") else { throw TestFailure("bad label in: \(line)") }
                rest = rest.dropFirst(2)
                var value = ""
                while let c = rest.first, c != "\"" {
                    rest = rest.dropFirst()
                    if c == "\\", let escaped = rest.first {
                        rest = rest.dropFirst()
                        value.append(escaped == "n" ? "\n" : escaped)
                    } else {
                        value.append(c)
                    }
                }
                guard rest.first == "\"" else { throw TestFailure("unterminated label value in: \(line)") }
                rest = rest.dropFirst()
                labels[String(key)] = value
                if rest.first == "," { rest = rest.dropFirst() }
                guard !rest.isEmpty else { throw TestFailure("unterminated labels in: \(line)") }
            }
            rest = rest.dropFirst()
        }
        let fields = rest.split(separator: " ")
        guard (1...2).contains(fields.count), let value = Self.number(fields[0]) else {
            throw TestFailure("bad sample value in: \(line)")
        }
        return Sample(name: String(name), labels: labels, value: value)
    }

    private static func number(_ text: Substring) -> Double? {
        switch text {
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default: return Double(text)
        }
    }
}
