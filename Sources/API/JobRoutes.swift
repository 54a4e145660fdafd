import Domain
import Engine
import Foundation
import Hummingbird
import Sandbox
import Store

/// `/jobs`: create, list, show (by id, by name), list by script type, update, delete — the
/// earlier platform's routes, answering as it did, with Confine's fields added.
struct JobRoutes {
    let server: APIServer

    static let createFields = ["name", "script_type", "script_content", "policy", "limits", "concurrency", "arguments", "environment"]

    func register(_ table: RouteTable) {
        table.on(.post, "/jobs") { request, _ in
            let new = try await newJob(server.json(request))
            let job = try await server.storeCall { try await server.store.createJob(new) }
            return APIServer.respond(Representations.job(job))
        }
        table.on(.get, "/jobs") { request, _ in
            let type = request.uri.queryParameters.get("script_type").map { ScriptType($0) }
            let jobs = try await server.storeCall { try await server.store.jobs(scriptType: type) }
            return APIServer.respond(.array(jobs.map(Representations.job)))
        }
        table.on(.get, "/jobs/{id}") { _, path in
            try await APIServer.respond(Representations.job(job(server.id(path, "id"))))
        }
        table.on(.get, "/jobs/by_name/{name}") { _, path in
            let name = path.get("name") ?? ""
            guard let job = try await server.storeCall({ try await server.store.job(named: name) }) else {
                throw Problem.notFound("no job named \"\(name)\"", field: "name")
            }
            return APIServer.respond(Representations.job(job))
        }
        table.on(.get, "/jobs/by_script_type/{script_type}") { _, path in
            let type = ScriptType(path.get("script_type") ?? "")
            let jobs = try await server.storeCall { try await server.store.jobs(scriptType: type) }
            return APIServer.respond(.array(jobs.map(Representations.job)))
        }
        table.on(.patch, "/jobs/{id}") { request, path in
            let id = try server.id(path, "id")
            let body = try await server.json(request)
            let current = try await job(id)
            let patch = try jobPatch(body, current: current)
            let job = try await server.storeCall { try await server.store.updateJob(id: id, patch) }
            return APIServer.respond(Representations.job(job))
        }
        table.on(.delete, "/jobs/{id}") { _, path in
            let id = try server.id(path, "id")
            let job = try await job(id)
            try await server.storeCall { try await server.store.deleteJob(id: id) }
            return APIServer.respond(Representations.job(job))
        }
    }

    func job(_ id: Int64) async throws -> Job {
        guard let job = try await server.storeCall({ try await server.store.job(id: id) }) else {
            throw Problem.notFound("job \(id) not found")
        }
        return job
    }

    // MARK: Validation

    func newJob(_ json: JSON) throws(Problem) -> NewJob {
        let body = try BodyReader(json, allowed: Self.createFields)
        var job = NewJob(name: try body.requiredString("name"), scriptType: ScriptType(try body.requiredString("script_type")),
                         scriptContent: try body.requiredString("script_content"))
        try apply(body, to: &job)
        try validate(job)
        return job
    }

    func jobPatch(_ json: JSON, current: Job) throws(Problem) -> JobPatch {
        let body = try BodyReader(json, allowed: Self.createFields)
        var merged = NewJob(name: current.name, scriptType: current.scriptType, scriptContent: current.scriptContent,
                            policy: current.policy, limits: current.limits, concurrency: current.concurrency,
                            arguments: current.arguments, environment: current.environment)
        if let name = try body.string("name") { merged.name = name }
        if let type = try body.string("script_type") { merged.scriptType = ScriptType(type) }
        if let content = try body.string("script_content") { merged.scriptContent = content }
        try apply(body, to: &merged)
        try validate(merged)
        return JobPatch(name: merged.name, scriptType: merged.scriptType, scriptContent: merged.scriptContent,
                        policy: merged.policy, limits: merged.limits, concurrency: merged.concurrency,
                        arguments: merged.arguments, environment: merged.environment)
    }

    private func apply(_ body: BodyReader, to job: inout NewJob) throws(Problem) {
        if let policy = try body.string("policy") { job.policy = policy }
        if let limits = try body.limits("limits") { job.limits = limits }
        if let rule = try body.string("concurrency") {
            guard let concurrency = ConcurrencyRule(rawValue: rule) else {
                let names = ConcurrencyRule.allCases.map(\.rawValue)
                throw .validation("concurrency", "concurrency: expected one of \(names.joined(separator: ", ")), got \"\(rule)\"")
            }
            job.concurrency = concurrency
        }
        if let arguments = try body.strings("arguments") { job.arguments = arguments }
        if let environment = try body.stringMap("environment") { job.environment = environment }
    }

    /// What the engine would refuse at run time, refused when the job is stored: name, script
    /// type, size, policy, limits and environment.
    func validate(_ job: NewJob) throws(Problem) {
        if job.name.isEmpty || job.name.count > 200 {
            throw .validation("name", "name must be 1 to 200 characters, got \(job.name.count)")
        }
        if job.name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) || job.name.contains("/") {
            throw .validation("name", "name may not contain control characters or \"/\" (it is used in /jobs/by_name/{name})")
        }
        let runtimes = server.engine.configuration.runtimes
        if runtimes[job.scriptType] == nil {
            let known = runtimes.keys.map(\.rawValue).sorted()
            throw .validation("script_type", "script_type: expected one of \(known.joined(separator: ", ")) (the server's runtimes), "
                              + "got \"\(job.scriptType.rawValue)\"\(Suggestions.didYouMean(job.scriptType.rawValue, in: known))")
        }
        let size = job.scriptContent.utf8.count, limit = server.engine.configuration.maxScriptBytes
        if size > limit {
            throw .validation("script_content", "script_content is \(size) bytes; at most \(limit) are accepted (max_script_size)")
        }
        let policies = server.engine.policies
        guard policies[job.policy] != nil else {
            throw .validation("policy", "policy: no policy named \"\(job.policy)\"\(Suggestions.didYouMean(job.policy, in: policies.names)); "
                              + "policies are \(policies.names.joined(separator: ", "))")
        }
        let policy: Policy
        do {
            policy = try server.engine.effectivePolicy(name: job.policy, limits: job.limits)
        } catch {
            throw .validation("limits", "limits: \(error.description)")
        }
        for name in job.environment.keys.sorted() {
            guard name.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil else {
                throw .validation("environment.\(name)", "environment: \"\(name)\" is not a valid variable name")
            }
            guard policy.environment.allows(name) else {
                throw .validation("environment.\(name)", "environment: \(name) is not allowed by policy \(policy.name)")
            }
        }
        for (i, argument) in job.arguments.enumerated() where argument.utf8.contains(0) {
            throw .validation("arguments[\(i)]", "arguments[\(i)] contains a NUL byte")
        }
    }
}
