import Domain
import Engine
import Foundation
import HTTPTypes
import HumanText
import Hummingbird
import NIOCore
import Store
import Wire

/// `/executions`: run a job (optionally waiting for the end), show, list with filters and a
/// cursor, cancel, and the output streams: raw, or followed live (`OutputFollower`).
/// Submitters and viewers see only their tenant's executions; another tenant's is "not found".
struct ExecutionRoutes {
    let server: APIServer

    /// The members of a run's body (`RunRequest`), as the wire type declares them.
    static let runFields = WireRunRequest.wireNames

    func register(_ table: RouteTable) {
        table.on(.post, "/executions/{job_id}/run", .role(.submitter)) { request, path in
            try await run(request, jobID: server.id(path, "job_id"))
        }
        // The earlier platform's newer versions ran a job here.
        table.on(.post, "/jobs/{id}/run", .role(.submitter)) { request, path in
            try await run(request, jobID: server.id(path, "id"))
        }
        table.on(.get, "/executions/{id}", .role(.viewer)) { request, path in
            let execution = try await execution(server.id(path, "id"))
            return APIServer.respond(Representations.execution(execution, encoding: try encoding(request)))
        }
        table.on(.get, "/executions/job/{job_id}", .role(.viewer)) { request, path in
            let jobID = try server.id(path, "job_id")
            let encoding = try encoding(request)
            let caller = try server.caller
            guard let job = try await server.storeCall({ try await server.store.job(id: jobID) }), caller.sees(tenant: job.tenant) else {
                throw Problem.notFound("job \(jobID) not found", field: "job_id")
            }
            var all: [Execution] = []
            var cursor: Int64?
            repeat {
                let page = try await server.storeCall {
                    try await server.store.executions(ExecutionQuery(jobID: jobID, before: cursor, limit: ExecutionQuery.maximumLimit))
                }
                all += page.executions
                cursor = page.nextCursor
            } while cursor != nil
            return APIServer.respond(.array(all.reversed().map { Representations.execution($0, encoding: encoding) }))
        }
        table.on(.get, "/executions", .role(.viewer)) { request, _ in
            var query = try listing(request.uri.queryParameters)
            query.tenant = try server.caller.scope
            let page = try await server.storeCall { try await server.store.executions(query) }
            return APIServer.respond(.object([
                ("executions", .array(page.executions.map { Representations.execution($0, withOutput: false) })),
                ("next_cursor", JSON.optional(page.nextCursor) { .string(String($0)) }),
            ]))
        }
        table.on(.post, "/executions/{id}/cancel", .role(.submitter)) { request, path in
            let id = try server.id(path, "id")
            let encoding = try encoding(request)
            try await requireVisible(id)
            var execution = try await server.engineCall { () async throws(EngineError) in try await server.engine.cancel(executionID: id) }
            await server.audit("execution.cancel", "execution", String(id), "was \(execution.status.rawValue)")
            if !execution.status.isFinal {
                execution = try await waitFinal(id, seconds: 2) ?? execution
            }
            return APIServer.respond(Representations.execution(execution, encoding: encoding),
                                     status: execution.status.isFinal ? .ok : .accepted)
        }
        table.on(.get, "/executions/{id}/output", .role(.viewer)) { request, path in
            let id = try server.id(path, "id")
            let query = request.uri.queryParameters
            if try flag(query, "follow") == true {
                let follower = try OutputFollower.parse(request, server: server, executionID: id, encoding: try encoding(request))
                try await requireVisible(id)
                return follower.response()
            }
            if query.get("offset") != nil {
                throw Problem.invalidParameter("offset", "offset applies to follow=true (the raw output always starts at byte 0)")
            }
            let execution = try await execution(id)
            let stream = query.get("stream") ?? "stdout"
            let (bytes, truncated, total): (Data, Bool, Int64)
            switch stream {
            case "stdout": (bytes, truncated, total) = (execution.stdout, execution.stdoutTruncated, execution.stdoutBytes)
            case "stderr": (bytes, truncated, total) = (execution.stderr, execution.stderrTruncated, execution.stderrBytes)
            default: throw Problem.invalidParameter("stream", "stream must be stdout or stderr, got \"\(stream)\"")
            }
            var headers: HTTPFields = [.contentType: "application/octet-stream"]
            headers[HTTPField.Name("X-Confine-Truncated")!] = truncated ? "true" : "false"
            headers[HTTPField.Name("X-Confine-Total-Bytes")!] = String(total)
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }

    /// Refuses an execution the caller may not see ("not found", as one that does not exist),
    /// reading its row only, never its output (which may be hundreds of MB).
    func requireVisible(_ id: Int64) async throws {
        let caller = try server.caller
        guard let slice = try await server.storeCall({
            try await server.store.output(executionID: id, stdoutFrom: 0, stderrFrom: 0, limit: 0)
        }), caller.sees(tenant: slice.execution.tenant) else {
            throw Problem.notFound("execution \(id) not found")
        }
    }

    /// The execution with this id, if the caller may see it; "not found" otherwise.
    func execution(_ id: Int64) async throws -> Execution {
        let caller = try server.caller
        guard let execution = try await server.storeCall({ try await server.store.execution(id: id) }),
              caller.sees(tenant: execution.tenant) else {
            throw Problem.notFound("execution \(id) not found")
        }
        return execution
    }

    func encoding(_ request: Request) throws -> Representations.OutputEncoding {
        guard let text = request.uri.queryParameters.get("encoding") else { return .utf8 }
        guard let encoding = Representations.OutputEncoding(rawValue: text) else {
            throw Problem.invalidParameter("encoding", "encoding must be utf-8 or base64, got \"\(text)\"")
        }
        return encoding
    }

    // MARK: Run

    func run(_ request: Request, jobID: Int64) async throws -> Response {
        let encoding = try encoding(request)
        let body = try await server.optionalJSON(request)
        let reader = try BodyReader(body ?? .object([]), allowed: Self.runFields)
        var options = RunOptions()
        let stdin = try reader.string("stdin"), stdinBase64 = try reader.string("stdin_base64")
        if stdin != nil, stdinBase64 != nil {
            throw Problem.validation("stdin_base64", "give stdin or stdin_base64, not both")
        }
        if let stdin { options.stdin = Data(stdin.utf8) }
        if let stdinBase64 {
            guard let data = Data(base64Encoded: stdinBase64) else {
                throw Problem.validation("stdin_base64", "stdin_base64 is not valid base64")
            }
            options.stdin = data
        }
        options.arguments = try reader.strings("arguments")
        options.environment = try reader.stringMap("environment") ?? [:]
        options.limits = try reader.limits("limits") ?? []
        options.priority = try reader.integer("priority", in: -100...100) ?? 0

        let query = request.uri.queryParameters
        var wait = try reader.bool("wait") ?? false
        if let value = try flag(query, "wait") { wait = value }
        var timeout = try reader.number("wait_timeout") ?? 30
        if let text = query.get("wait_timeout") {
            guard let value = Double(text) else {
                throw Problem.invalidParameter("wait_timeout", "wait_timeout must be a number of seconds, got \"\(text)\"")
            }
            timeout = value
        }
        let maxWait = server.configuration.maxWaitSeconds
        if !reader.has("wait_timeout"), query.get("wait_timeout") == nil { timeout = min(timeout, maxWait) }
        guard timeout > 0, timeout <= maxWait else {
            throw Problem.validation("wait_timeout", "wait_timeout must be above 0 and at most \(maxWait) seconds (max_wait), got \(timeout)")
        }

        // The job must be the caller's to see (404 otherwise), and its effective policy within
        // the token's quotas.
        let caller = try server.caller
        let job = try await JobRoutes(server: server).job(jobID)
        let policy = try await server.engineCall { () async throws(EngineError) in
            try server.engine.effectivePolicy(name: job.policy, limits: job.limits + options.limits)
        }
        try Quotas.check(policy, token: caller.token, policies: server.engine.policies)
        options.submittedBy = caller.token.id
        options.maxActive = caller.token.maxActive
        let execution = try await server.engineCall { () async throws(EngineError) in
            try await server.engine.submit(jobID: jobID, options: options)
        }
        await server.audit("execution.run", "execution", String(execution.id), "job \(jobID) (\(job.name)), policy \(policy.name)")
        guard wait else {
            return APIServer.respond(.object([
                ("execution_id", .int(execution.id)),
                ("status", .string(execution.status.rawValue)),
            ]))
        }
        let final = try await waitFinal(execution.id, seconds: timeout)
        let current: Execution
        if let final { current = final } else { current = try await self.execution(execution.id) }
        return APIServer.respond(Representations.execution(current, encoding: encoding, executionID: true),
                                 status: final != nil ? .ok : .accepted)
    }

    /// A true/false query parameter (also 1/0); nil when absent.
    func flag(_ query: Parameters, _ name: String) throws -> Bool? {
        guard let text = query.get(name) else { return nil }
        guard let value = Bool(text.lowercased()) ?? (text == "1" ? true : text == "0" ? false : nil) else {
            throw Problem.invalidParameter(name, "\(name) must be true or false, got \"\(text)\"")
        }
        return value
    }

    /// The execution once final, polling the store (cheap reads from the pool), or nil when
    /// `seconds` pass first.
    func waitFinal(_ id: Int64, seconds: Double) async throws -> Execution? {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        var pause = Duration.milliseconds(5)
        while true {
            let execution = try await self.execution(id)
            if execution.status.isFinal { return execution }
            if ContinuousClock.now >= deadline { return nil }
            try await Task.sleep(for: min(pause, deadline - ContinuousClock.now))
            pause = min(pause * 2, .milliseconds(100))
        }
    }

    // MARK: Listing

    func listing(_ parameters: Parameters) throws -> ExecutionQuery {
        // Listings show no output: it is not read.
        var query = ExecutionQuery(withOutput: false)
        for (key, _) in parameters {
            let known = ["job_id", "status", "verdict", "created_after", "created_before", "cursor", "limit"]
            guard known.contains(String(key)) else {
                throw Problem.invalidParameter(String(key), "unknown query parameter \"\(key)\"\(Suggestions.didYouMean(String(key), in: known)); "
                                               + "parameters are \(known.joined(separator: ", "))")
            }
        }
        if let text = parameters.get("job_id") {
            guard let id = Int64(text), id >= 1 else { throw Problem.invalidParameter("job_id", "job_id must be a positive integer, got \"\(text)\"") }
            query.jobID = id
        }
        query.statuses = try values(parameters, "status") { ExecutionStatus(rawValue: $0) }
        query.verdicts = try values(parameters, "verdict") { ExecutionVerdict(rawValue: $0) }
        for name in ["created_after", "created_before"] {
            guard let text = parameters.get(name) else { continue }
            guard let date = Representations.parseDate(text) else {
                throw Problem.invalidParameter(name, "\(name) must be an RFC 3339 date such as 2026-11-27T03:04:05Z, got \"\(text)\"")
            }
            if name == "created_after" { query.createdAfter = date } else { query.createdBefore = date }
        }
        if let text = parameters.get("cursor") {
            guard let cursor = Int64(text), cursor >= 1 else {
                throw Problem.invalidParameter("cursor", "cursor must be a next_cursor value of a previous page, got \"\(text)\"")
            }
            query.before = cursor
        }
        if let text = parameters.get("limit") {
            guard let limit = Int(text), (1...ExecutionQuery.maximumLimit).contains(limit) else {
                throw Problem.invalidParameter("limit", "limit must be an integer from 1 to \(ExecutionQuery.maximumLimit), got \"\(text)\"")
            }
            query.limit = limit
        }
        return query
    }

    /// Comma-separated or repeated values of an enum parameter.
    private func values<T: RawRepresentable<String>>(_ parameters: Parameters, _ name: String, _ make: (String) -> T?) throws -> [T]
    where T: CaseIterable {
        var out: [T] = []
        for text in parameters.getAll(name) {
            for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
                guard let value = make(part) else {
                    let names = T.allCases.map(\.rawValue)
                    throw Problem.invalidParameter(name, "\(name): expected one of \(names.joined(separator: ", ")), got \"\(part)\""
                                                   + Suggestions.didYouMean(part, in: names))
                }
                out.append(value)
            }
        }
        return out
    }
}
