import Domain
import Engine
import Foundation
import HTTPTypes
import Hummingbird
import HumanText
import Sandbox
import Store
import Wire

/// `POST /executions`: code execution in one call. The script comes with the run (no job is
/// stored; the execution's `job_id` is null), with the same lifecycle, verdicts, output,
/// follow, cancel, retention and quotas as a job's run. 201 with `Location` without `wait`;
/// with `wait`, 200 and the finished execution, or 202 when it is still running.
struct AdHocRoutes {
    let server: APIServer

    /// The members of an ad-hoc run's body, as the wire type declares them.
    static let fields = WireAdHocRunRequest.wireNames

    func register(_ table: RouteTable) {
        table.on(.post, "/executions", .role(.submitter)) { request, _ in
            try await Idempotency(server: server).run(request) { try await run($0) }
        }
    }

    /// One ad-hoc run, and how a repeat of it with its idempotency key is answered.
    func run(_ request: Request) async throws -> (Response, IdempotentAnswer) {
        let routes = ExecutionRoutes(server: server)
        let encoding = try routes.encoding(request)
        let reader = try BodyReader(try await server.json(request), allowed: Self.fields)
        let run = try RunBody(reader, query: request.uri.queryParameters, maxWait: server.configuration.maxWaitSeconds,
                              maxFilesBytes: server.engine.configuration.maxFilesBytes)
        let execution = try await submit(reader, options: run.options)
        let location = "/executions/\(execution.id)"
        guard run.wait else {
            var answer = try APIServer.respond(WireRunAccepted(execution_id: execution.id, status: execution.status.rawValue),
                                               status: .created)
            answer.headers[.location] = location
            return (answer, IdempotentAnswer(status: 201, kind: "run-accepted", resourceID: execution.id, location: location))
        }
        let final = try await routes.waitFinal(execution.id, seconds: run.waitTimeout)
        let status: HTTPResponse.Status = final != nil ? .ok : .accepted
        var answer = try await routes.answer(execution.id, encoding: encoding, executionID: true) { _ in status }
        answer.headers[.location] = location
        return (answer, IdempotentAnswer(status: status.code, kind: "run-execution", resourceID: execution.id, location: location))
    }

    /// Validates an ad-hoc run (script type, size, policy, limits, environment, the token's
    /// quotas) and enqueues it; the body's run options are already read into `options`.
    func submit(_ reader: BodyReader, options: RunOptions) async throws -> Execution {
        let caller = try server.caller
        let script = try Self.script(reader, server: server, tenant: caller.token.tenant)
        let policy: Policy
        do {
            policy = try server.engine.effectivePolicy(name: script.policy, jobLimits: [], runLimits: options.limits)
        } catch {
            throw Problem.validation(reader.field("limits"), "\(reader.field("limits")): \(error.description)")
        }
        for name in options.environment.keys.sorted() {
            guard name.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil else {
                throw Problem.validation("\(reader.field("environment")).\(name)", "environment: \"\(name)\" is not a valid variable name")
            }
            guard policy.environment.allows(name) else {
                throw Problem.validation("\(reader.field("environment")).\(name)", "environment: \(name) is not allowed by policy \(policy.name)")
            }
        }
        for (i, argument) in (options.arguments ?? []).enumerated() where argument.utf8.contains(0) {
            throw Problem.validation("\(reader.field("arguments"))[\(i)]", "\(reader.field("arguments"))[\(i)] contains a NUL byte")
        }
        try Quotas.check(policy, token: caller.token, policies: server.engine.policies)
        try Quotas.check(priority: options.priority, token: caller.token)
        var options = options
        options.submittedBy = caller.token.id
        options.maxActive = caller.token.maxActive
        // Recorded with the execution, in its transaction (the store sets the target's id).
        options.audit = server.auditEntry("execution.run", "execution", nil, "ad-hoc \(script.scriptType.rawValue) script, policy \(policy.name)")
        return try await server.engineCall { () async throws(EngineError) in
            try await server.engine.submit(adHoc: script, options: options)
        }
    }

    /// The script of an ad-hoc run: a known script type, within `max_script_size`, under a
    /// policy of the server (`default` when none is named).
    static func script(_ reader: BodyReader, server: APIServer, tenant: String) throws(Problem) -> AdHocScript {
        let type = ScriptType(try reader.requiredString("script_type"))
        let content = try reader.requiredString("script_content")
        let policyName = try reader.string("policy") ?? "default"
        let runtimes = server.engine.configuration.runtimes
        if runtimes[type] == nil {
            let known = runtimes.keys.map(\.rawValue).sorted()
            throw .validation(reader.field("script_type"),
                              "script_type: expected one of \(known.joined(separator: ", ")) (the server's runtimes), "
                              + "got \"\(type.rawValue)\"\(Suggestions.didYouMean(type.rawValue, in: known))")
        }
        let size = content.utf8.count, limit = server.engine.configuration.maxScriptBytes
        if size > limit {
            throw .validation(reader.field("script_content"),
                              "script_content is \(size) bytes; at most \(limit) are accepted (max_script_size)")
        }
        let policies = server.engine.policies
        guard policies[policyName] != nil else {
            throw .validation(reader.field("policy"),
                              "policy: no policy named \"\(policyName)\"\(Suggestions.didYouMean(policyName, in: policies.names)); "
                              + "policies are \(policies.names.joined(separator: ", "))")
        }
        return AdHocScript(scriptType: type, content: content, policy: policyName, tenant: tenant)
    }
}
