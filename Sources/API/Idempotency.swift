import Credentials
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Store
import Synchronization
import Wire

/// `Idempotency-Key` on the POSTs that create (`/jobs`, `/executions`, `/executions/{job_id}/run`,
/// `/jobs/{id}/run`): the same key from the same tenant with the same request (method, path
/// with its query, body bytes) within `idempotency_ttl` answers what the first answered — the
/// same status, the same ids — and does nothing else, even when both arrive at once (the key
/// is reserved in the store before the request runs: one of two simultaneous requests holds
/// it, the other waits for its answer). The same key with another request is 422
/// `idempotency-key-reused`. A refused request (4xx, 5xx) did nothing: its key is given up,
/// and a repeat is judged anew. Keys are stored, so they survive a restart.
struct Idempotency {
    let server: APIServer

    static let header = HTTPField.Name("Idempotency-Key")!
    /// Set on an answer given again from a key's record.
    static let replayedHeader = HTTPField.Name("Idempotent-Replayed")!
    /// When expired keys were last purged (at most once a minute, by a request that reserves one).
    private static let lastPurge = Mutex<ContinuousClock.Instant?>(nil)

    /// Answers `request` with `body` once per key (or plainly without a key); a repeat is
    /// answered by `replay` from what the first answer created.
    func run(_ request: Request, _ body: @escaping @Sendable (Request) async throws -> (Response, IdempotentAnswer?)) async throws -> Response {
        guard let key = request.headers[Self.header] else { return try await body(request).0 }
        try Self.validate(key)
        let tenant = try server.caller.token.tenant
        var request = request
        let bytes = try await server.collect(&request)
        var identity = Data("\(request.method.rawValue) \(request.uri.description)\n".utf8)
        identity.append(contentsOf: bytes.readableBytesView)
        let digest = Digest.sha256(identity)
        let store = server.access
        let ttl = server.configuration.idempotencyTTL
        purgeExpired(ttl: ttl)
        // A key held longer than a request can take belongs to a request that will never be answered.
        let deadline = ContinuousClock.now + .seconds(server.configuration.maxWaitSeconds + 60)
        while true {
            let now = Date()
            let held = try await server.storeCall {
                try await store.reserveIdempotencyKey(tenant: tenant, key: key, digest: digest, now: now,
                                                      expiredBefore: now - ttl.seconds)
            }
            var holder = held == nil
            if let held {
                guard held.digest == digest else {
                    throw Problem("idempotency-key-reused", .unprocessableContent,
                                  "Idempotency-Key \"\(key)\" was used for another request (another route, query or body) within "
                                  + "idempotency_ttl; use a new key for a new request", field: "Idempotency-Key")
                }
                if let answer = held.answer {
                    var response: Response
                    do {
                        response = try await replay(answer, request: request)
                    } catch let problem as Problem where problem.slug == "not-found" {
                        throw Problem.notFound("""
                            \(answer.kind == "job" ? "job" : "execution") \(answer.resourceID), which the first request with \
                            Idempotency-Key "\(key)" created, no longer exists (deleted since); send a new key to create another
                            """, field: "Idempotency-Key")
                    }
                    response.headers[Self.replayedHeader] = "true"
                    return response
                }
                // Held by a request of a server that stopped before answering: taken over.
                if held.createdAt < server.startedAt {
                    holder = try await server.storeCall {
                        try await store.takeOverIdempotencyKey(tenant: tenant, key: key, createdAt: held.createdAt, now: now)
                    }
                }
            }
            if holder {
                // Not cancelled with the request (a client hanging up): once the key is held, the
                // request runs to its end and its answer is recorded for the repeat.
                let held = request
                return try await Task { try await answerOnce(held, tenant: tenant, key: key, body) }.value
            }
            // The first request is being answered: its answer is this one's too.
            if ContinuousClock.now >= deadline {
                var problem = Problem("idempotency-key-in-progress", .conflict,
                                      "a request with Idempotency-Key \"\(key)\" is still being answered; retry later",
                                      field: "Idempotency-Key")
                problem.headers[.retryAfter] = "5"
                throw problem
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Runs the request holding the key and records its answer; a refusal gives the key up.
    private func answerOnce(_ request: Request, tenant: String, key: String,
                            _ body: @Sendable (Request) async throws -> (Response, IdempotentAnswer?)) async throws -> Response {
        let store = server.access
        let response: Response, answer: IdempotentAnswer?
        do {
            (response, answer) = try await body(request)
        } catch {
            try? await store.releaseIdempotencyKey(tenant: tenant, key: key)
            throw error
        }
        guard let answer, (200..<300).contains(response.status.code) else {
            try? await store.releaseIdempotencyKey(tenant: tenant, key: key)
            return response
        }
        try await server.storeCall { try await store.completeIdempotencyKey(tenant: tenant, key: key, answer: answer) }
        return response
    }

    /// The answer of a repeat: what the first created, answered as the first was (its status;
    /// an execution as it is now).
    private func replay(_ answer: IdempotentAnswer, request: Request) async throws -> Response {
        let status = HTTPResponse.Status(code: answer.status)
        var response: Response
        switch answer.kind {
        case "job":
            response = try APIServer.respond(Representations.job(try await JobRoutes(server: server).job(answer.resourceID)), status: status)
        case "run-accepted":
            response = try APIServer.respond(WireRunAccepted(execution_id: answer.resourceID, status: "PENDING"), status: status)
        default:
            let routes = ExecutionRoutes(server: server)
            response = try await routes.answer(answer.resourceID, encoding: try routes.encoding(request), executionID: true) { _ in status }
        }
        if let location = answer.location { response.headers[.location] = location }
        return response
    }

    /// 1 to 255 printable ASCII characters.
    static func validate(_ key: String) throws(Problem) {
        let bytes = Array(key.utf8)
        guard (1...255).contains(bytes.count), bytes.allSatisfy({ (0x20...0x7E).contains($0) }) else {
            throw Problem.invalidParameter("Idempotency-Key",
                                           "Idempotency-Key must be 1 to 255 printable ASCII characters, got \(bytes.count) bytes"
                                           + (bytes.allSatisfy({ (0x20...0x7E).contains($0) }) ? "" : " with unprintable ones"))
        }
    }

    /// Deletes expired keys, at most once a minute, off the request's path.
    private func purgeExpired(ttl: Duration) {
        let now = ContinuousClock.now
        let due = Self.lastPurge.withLock { last -> Bool in
            if let last, now - last < .seconds(60) { return false }
            last = now
            return true
        }
        guard due else { return }
        let store = server.access
        Task { try? await store.purgeIdempotencyKeys(before: Date() - ttl.seconds) }
    }
}
