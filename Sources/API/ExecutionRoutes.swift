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
            let jobID = try server.id(path, "job_id")
            return try await Idempotency(server: server).run(request) { try await run($0, jobID: jobID) }
        }
        // The earlier platform's newer versions ran a job here.
        table.on(.post, "/jobs/{id}/run", .role(.submitter)) { request, path in
            let jobID = try server.id(path, "id")
            return try await Idempotency(server: server).run(request) { try await run($0, jobID: jobID) }
        }
        table.on(.get, "/executions/{id}", .role(.viewer)) { request, path in
            try await answer(server.id(path, "id"), encoding: try encoding(request), keep: true)
        }
        table.on(.get, "/executions/job/{job_id}", .role(.viewer)) { request, path in
            let jobID = try server.id(path, "job_id")
            let encoding = try encoding(request)
            let paging = try StreamedAnswers.paging(request.uri.queryParameters)
            let caller = try server.caller
            guard let job = try await server.storeCall({ try await server.store.job(id: jobID) }), caller.sees(tenant: job.tenant) else {
                throw Problem.notFound("job \(jobID) not found", field: "job_id")
            }
            return try await StreamedAnswers(server: server).executions(jobID: jobID, encoding: encoding, paging: paging,
                                                                        path: request.uri.path)
        }
        table.on(.get, "/executions", .role(.viewer)) { request, _ in
            var query = try listing(request.uri.queryParameters)
            query.tenant = try server.caller.scope
            let page = try await server.storeCall { try await server.store.executions(query) }
            return try APIServer.respond(WireExecutionPage(executions: page.executions.map { Representations.execution($0, withOutput: false) },
                                                           next_cursor: page.nextCursor.map { String($0) }))
        }
        table.on(.post, "/executions/{id}/cancel", .role(.submitter)) { request, path in
            let id = try server.id(path, "id")
            let encoding = try encoding(request)
            try await requireVisible(id)
            var execution: Execution
            do throws(EngineError) {
                execution = try await server.engine.cancel(executionID: id)
            } catch {
                // Said plainly: a finished execution stays as it ended.
                if case .store(.invalidTransition(executionID: _, from: let from, to: _)) = error {
                    throw Problem.conflict(from == .cancelled ? "execution \(id) is already CANCELLED"
                                           : "execution \(id) is already finished (\(from.rawValue)); only a PENDING or RUNNING execution can be cancelled")
                }
                throw Problem.from(error)
            }
            await server.audit("execution.cancel", "execution", String(id), "was \(execution.status.rawValue)")
            if !execution.status.isFinal {
                execution = try await waitFinal(id, seconds: 2) ?? execution
            }
            return try await answer(id, encoding: encoding) { $0.status.isFinal ? .ok : .accepted }
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
            let stream = query.get("stream") ?? "stdout"
            guard stream == "stdout" || stream == "stderr" else {
                throw Problem.invalidParameter("stream", "stream must be stdout or stderr, got \"\(stream)\"")
            }
            return try await rawOutput(id, stdout: stream == "stdout", range: request.headers[.range])
        }
    }

    /// The raw bytes of one stream, or of the byte range asked for (`Range: bytes=A-B`, 206):
    /// only that stream and range are read, a chunk at a time, never the whole output.
    func rawOutput(_ id: Int64, stdout: Bool, range: String?) async throws -> Response {
        let caller = try server.caller
        let store = server.store
        guard let head = try await server.storeCall({ try await store.output(executionID: id, stdoutFrom: .max, stderrFrom: .max, limit: 0) }),
              caller.sees(tenant: head.execution.tenant) else {
            throw Problem.notFound("execution \(id) not found")
        }
        let execution = head.execution
        let stored = stdout ? head.storedStdout : head.storedStderr
        let (truncated, total) = stdout ? (execution.stdoutTruncated, execution.stdoutBytes) : (execution.stderrTruncated, execution.stderrBytes)
        var headers: HTTPFields = [.contentType: "application/octet-stream", .acceptRanges: "bytes"]
        headers[HTTPField.Name("X-Confine-Truncated")!] = truncated ? "true" : "false"
        headers[HTTPField.Name("X-Confine-Total-Bytes")!] = String(total)
        var start: Int64 = 0, end = stored  // [start, end)
        var status = HTTPResponse.Status.ok
        if let range {
            guard let (first, last) = Self.byteRange(range, length: stored) else {
                var problem = Problem("range-not-satisfiable", .rangeNotSatisfiable,
                                      "Range \"\(range)\" is not a satisfiable single byte range of the \(stored) stored bytes "
                                      + "(expected bytes=A-B, bytes=A- or bytes=-N)", field: "Range")
                problem.headers[.contentRange] = "bytes */\(stored)"
                throw problem
            }
            (start, end, status) = (first, last + 1, .partialContent)
            headers[.contentRange] = "bytes \(first)-\(last)/\(stored)"
        }
        headers[.contentLength] = String(end - start)
        let from = start, until = end
        return Response(status: status, headers: headers, body: ResponseBody { writer in
            var position = from
            while position < until {
                let want = Int(min(Int64(StreamedAnswers.outputChunk), until - position))
                let slice = try await store.output(executionID: id, stdoutFrom: stdout ? position : .max,
                                                   stderrFrom: stdout ? .max : position, limit: want)
                let bytes = (stdout ? slice?.stdout : slice?.stderr) ?? Data()
                if bytes.isEmpty { break }
                try await writer.write(ByteBuffer(bytes: bytes))
                position += Int64(bytes.count)
            }
            try await writer.finish(nil)
        })
    }

    /// One byte range of a `Range` header (`bytes=A-B`, `bytes=A-`, `bytes=-N`) within `length`
    /// bytes, inclusive; nil when it is malformed, several, or outside.
    static func byteRange(_ header: String, length: Int64) -> (Int64, Int64)? {
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.hasPrefix("bytes="), !text.contains(",") else { return nil }
        let spec = text.dropFirst("bytes=".count)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, length > 0 else { return nil }
        if parts[0].isEmpty {
            guard let n = Int64(parts[1]), n > 0 else { return nil }
            return (max(0, length - n), length - 1)
        }
        guard let first = Int64(parts[0]), first >= 0, first < length else { return nil }
        if parts[1].isEmpty { return (first, length - 1) }
        guard let last = Int64(parts[1]), last >= first else { return nil }
        return (first, min(last, length - 1))
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

    /// The execution with this id, if the caller may see it; "not found" otherwise. Its row
    /// only (`stdout` and `stderr` empty): output is read where it is answered, a chunk at a time.
    func execution(_ id: Int64) async throws -> Execution {
        let caller = try server.caller
        guard let slice = try await server.storeCall({
            try await server.store.output(executionID: id, stdoutFrom: .max, stderrFrom: .max, limit: 0)
        }), caller.sees(tenant: slice.execution.tenant) else {
            throw Problem.notFound("execution \(id) not found")
        }
        return slice.execution
    }

    func encoding(_ request: Request) throws -> Representations.OutputEncoding {
        guard let text = request.uri.queryParameters.get("encoding") else { return .utf8 }
        guard let encoding = Representations.OutputEncoding(rawValue: text) else {
            throw Problem.invalidParameter("encoding", "encoding must be utf-8 or base64, got \"\(text)\"")
        }
        return encoding
    }

    // MARK: Run

    func run(_ request: Request, jobID: Int64) async throws -> (Response, IdempotentAnswer) {
        let encoding = try encoding(request)
        let body = try await server.optionalJSON(request)
        let reader = try BodyReader(body ?? .object([]), allowed: Self.runFields)
        let run = try RunBody(reader, query: request.uri.queryParameters, maxWait: server.configuration.maxWaitSeconds,
                              maxFilesBytes: server.engine.configuration.maxFilesBytes)
        let execution = try await submit(jobID: jobID, options: run.options)
        guard run.wait else {
            return (try APIServer.respond(WireRunAccepted(execution_id: execution.id, status: execution.status.rawValue)),
                    IdempotentAnswer(status: 200, kind: "run-accepted", resourceID: execution.id))
        }
        let final = try await waitFinal(execution.id, seconds: run.waitTimeout)
        let status: HTTPResponse.Status = final != nil ? .ok : .accepted
        return (try await answer(execution.id, encoding: encoding, executionID: true) { _ in status },
                IdempotentAnswer(status: status.code, kind: "run-execution", resourceID: execution.id))
    }

    /// Queues a run of a job: the job must be the caller's to see (404 otherwise), and its
    /// effective policy and the run's priority within the token's quotas.
    func submit(jobID: Int64, options: RunOptions) async throws -> Execution {
        var options = options
        let caller = try server.caller
        let job = try await JobRoutes(server: server).job(jobID)
        let policy = try await server.engineCall { () async throws(EngineError) in
            try server.engine.effectivePolicy(name: job.policy, jobLimits: job.limits, runLimits: options.limits)
        }
        try Quotas.check(policy, token: caller.token, policies: server.engine.policies)
        try Quotas.check(priority: options.priority, token: caller.token)
        options.submittedBy = caller.token.id
        options.maxActive = caller.token.maxActive
        // Recorded with the execution, in its transaction (the store sets the target's id).
        options.audit = server.auditEntry("execution.run", "execution", nil, "job \(jobID) (\(job.name)), policy \(policy.name)")
        return try await server.engineCall { () async throws(EngineError) in
            try await server.engine.submit(job: job, options: options)
        }
    }

    /// An execution with its output. Its row and the first `StreamedAnswers.inlineOutput` bytes
    /// of output are read in one snapshot: when that is all of it (the usual case), the answer
    /// is written in one piece; else the rest streams from the store a chunk at a time, so that
    /// no answer holds more than a chunk of output in memory whatever is stored. Another
    /// tenant's execution is not found, as one that does not exist.
    ///
    /// With `keep` (`GET /executions/{id}`), a finished execution's answer written in one piece
    /// is kept in memory and answered from there while no execution is deleted
    /// (`FinishedAnswers`).
    func answer(_ id: Int64, encoding: Representations.OutputEncoding, executionID: Bool = false, keep: Bool = false,
                status: (Execution) -> HTTPResponse.Status = { _ in .ok }) async throws -> Response {
        let caller = try server.caller
        // Read before the store is (see FinishedAnswers).
        let version = keep ? server.store.finishedExecutionsVersion() : nil
        if let version, let kept = server.finishedAnswers.answer(id, encoding, version: version) {
            guard caller.sees(tenant: kept.tenant) else { throw Problem.notFound("execution \(id) not found") }
            return APIServer.respond(buffer: kept.body)
        }
        guard let slice = try await server.storeCall({
            try await server.store.output(executionID: id, stdoutFrom: 0, stderrFrom: 0, limit: StreamedAnswers.inlineOutput)
        }), caller.sees(tenant: slice.execution.tenant) else {
            throw Problem.notFound("execution \(id) not found")
        }
        if Int64(slice.stdout.count) == slice.storedStdout && Int64(slice.stderr.count) == slice.storedStderr {
            var whole = slice.execution
            whole.stdout = slice.stdout
            whole.stderr = slice.stderr
            let bytes = try WireJSON.encode(Representations.execution(whole, encoding: encoding, executionID: executionID))
            let answer = status(whole)
            if let version, whole.status.isFinal, answer == .ok {
                let body = ByteBuffer(bytes: bytes)
                server.finishedAnswers.keep(id, encoding, version: version, tenant: whole.tenant, body: body)
                return APIServer.respond(buffer: body)
            }
            return APIServer.respond(bytes: bytes, status: answer)
        }
        return StreamedAnswers(server: server).execution(slice.execution, encoding: encoding, executionID: executionID,
                                                         status: status(slice.execution))
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
