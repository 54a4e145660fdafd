import Domain
import Engine
import Foundation
import HTTPTypes
import Hummingbird
import Wire

/// `POST /executions/batch`: up to 100 runs in one request, each of a stored job (`job_id` and
/// run options) or ad-hoc (a script and run options), answered 207 with one result per run in
/// order: `{"execution_id", "status": "PENDING"}` or `{"problem": {…problem+json…}}`.
///
/// Transactions: one per accepted run. Each run is validated and enqueued on its own, exactly
/// as the single-run routes would (quotas — `max_active` counts each run —, the queue bound,
/// the job's concurrency rule), so one bad or refused run does not refuse the others, and the
/// runs accepted before a refusal stay accepted. Runs are queued, never waited for (`wait` is
/// refused in an item).
struct BatchRoutes {
    let server: APIServer

    /// The most runs of one batch.
    static let maxRuns = 100
    /// The members of a batch run, as the wire type declares them.
    static let runFields = WireBatchRun.wireNames

    func register(_ table: RouteTable) {
        table.on(.post, "/executions/batch", .role(.submitter)) { request, _ in
            // Each run is its own transaction: a repeated batch cannot be answered as one.
            if request.headers[Idempotency.header] != nil {
                throw Problem.invalidParameter("Idempotency-Key", "Idempotency-Key is taken by POST /jobs, /executions, "
                                               + "/executions/{job_id}/run and /jobs/{id}/run, not by a batch, whose runs are each "
                                               + "queued on their own; send the runs one by one with a key each to retry them safely")
            }
            let body = try BodyReader(try await server.json(request), allowed: WireBatchRequest.wireNames)
            guard let value = body.members["runs"], value != .null else { throw Problem.validation("runs", "runs is required") }
            guard case .array(let runs) = value else {
                throw Problem.validation("runs", "runs: expected an array of runs, got \(value.kind)")
            }
            guard (1...Self.maxRuns).contains(runs.count) else {
                throw Problem.validation("runs", "runs: \(runs.count) runs; a batch has 1 to \(Self.maxRuns)")
            }
            var results: [WireBatchResult] = []
            for (i, run) in runs.enumerated() {
                do {
                    let execution = try await submit(run, at: "runs[\(i)]")
                    results.append(WireBatchResult(execution_id: execution.id, status: execution.status.rawValue))
                } catch {
                    var problem = error as? Problem ?? Problem("internal", .internalServerError, "runs[\(i)]: \(error)")
                    if let field = problem.field, !field.hasPrefix("runs[") { problem.field = "runs[\(i)].\(field)" }
                    if problem.field == nil { problem.field = problem.slug == "not-found" ? "runs[\(i)].job_id" : "runs[\(i)]" }
                    results.append(WireBatchResult(problem: problem.document(instance: request.uri.path)))
                }
            }
            return try APIServer.respond(WireBatchAnswer(results: results), status: HTTPResponse.Status(code: 207, reasonPhrase: "Multi-Status"))
        }
    }

    /// One run of the batch, validated and enqueued as the single-run routes do.
    private func submit(_ json: JSON, at path: String) async throws -> Execution {
        let reader = try BodyReader(json, path: path, allowed: Self.runFields)
        let run = try RunBody(reader, query: nil, maxWait: server.configuration.maxWaitSeconds,
                              maxFilesBytes: server.engine.configuration.maxFilesBytes)
        if reader.has("job_id") {
            for key in ["script_type", "script_content", "policy"] where reader.has(key) {
                throw Problem.validation(reader.field(key), "\(reader.field(key)): a run of a stored job (job_id) takes the job's \(key); "
                                         + "leave out job_id for an ad-hoc run")
            }
            let jobID = try reader.integer("job_id", in: 1...Int.max) ?? 0
            return try await ExecutionRoutes(server: server).submit(jobID: Int64(jobID), options: run.options)
        }
        return try await AdHocRoutes(server: server).submit(reader, options: run.options)
    }
}
