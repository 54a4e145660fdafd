import Domain
import Engine
import Foundation
import HumanText
import Hummingbird
import Sandbox
import Store
import Wire

/// `/jobs`: create, list, show (by id, by name), list by script type, update, delete — the
/// earlier platform's routes, answering as it did, with Confine's fields added. Submitters and
/// viewers see only their tenant's jobs: another tenant's job is "not found", as if it did not
/// exist, so ids and names do not leak.
struct JobRoutes {
    let server: APIServer

    /// A job name's limits: characters, and UTF-8 bytes (combining marks add bytes, not characters).
    static let nameCharacters = 200, nameBytes = 800

    /// The members of a job's body (`JobCreate`, `JobUpdate`), as the wire type declares them.
    static let createFields = WireJobBody.wireNames

    func register(_ table: RouteTable) {
        table.on(.post, "/jobs", .role(.submitter)) { request, _ in
            try await Idempotency(server: server).run(request) { request in
                let caller = try server.caller
                var new = try await newJob(server.json(request))
                new.tenant = caller.token.tenant
                new.createdBy = caller.token.id
                let job = try await server.storeCall { try await server.store.createJob(new) }
                await server.audit("job.create", "job", String(job.id), "name \(job.name), policy \(job.policy)" + Self.secretNote(new.secretEnvironment))
                return (try APIServer.respond(Representations.job(job)), IdempotentAnswer(status: 200, kind: "job", resourceID: job.id))
            }
        }
        table.on(.get, "/jobs", .role(.viewer)) { request, _ in
            let parameters = request.uri.queryParameters
            let paging = try StreamedAnswers.paging(parameters)
            let type = parameters.get("script_type").map { ScriptType($0) }
            let scope = try server.caller.scope
            return try await StreamedAnswers(server: server).jobs(scriptType: type, tenant: scope, paging: paging, path: request.uri.path)
        }
        table.on(.get, "/jobs/{id}", .role(.viewer)) { _, path in
            try await APIServer.respond(Representations.job(job(server.id(path, "id"))))
        }
        table.on(.get, "/jobs/by_name/{name}", .role(.viewer)) { _, path in
            let name = path.get("name") ?? ""
            return try await APIServer.respond(Representations.job(job(named: name)))
        }
        table.on(.get, "/jobs/by_script_type/{script_type}", .role(.viewer)) { request, path in
            let type = ScriptType(path.get("script_type") ?? "")
            let paging = try StreamedAnswers.paging(request.uri.queryParameters)
            let scope = try server.caller.scope
            return try await StreamedAnswers(server: server).jobs(scriptType: type, tenant: scope, paging: paging, path: request.uri.path)
        }
        table.on(.patch, "/jobs/{id}", .role(.submitter)) { request, path in
            let id = try server.id(path, "id")
            let current = try await job(id)
            let body = try await server.json(request)
            let (patch, cleared) = try jobPatch(body, current: current)
            let job = try await server.storeCall { try await server.store.updateJob(id: id, patch) }
            let fields = (body.objectKeys ?? []).sorted().joined(separator: ", ")
            let note = cleared.isEmpty ? "" : "; secret variables cleared with the script: " + cleared.joined(separator: ", ")
            await server.audit("job.update", "job", String(id), "changed \(fields)" + note)
            return try APIServer.respond(Representations.job(job, secretsCleared: cleared))
        }
        table.on(.delete, "/jobs/{id}", .role(.submitter)) { _, path in
            let id = try server.id(path, "id")
            let job = try await job(id)
            try await server.storeCall { try await server.store.deleteJob(id: id) }
            await server.audit("job.delete", "job", String(id), "name \(job.name)")
            return try APIServer.respond(Representations.job(job))
        }
    }

    /// The job with this id, if the caller may see it; "not found" otherwise (the same words
    /// for a job of another tenant as for one that does not exist).
    func job(_ id: Int64) async throws -> Job {
        let caller = try server.caller
        guard let job = try await server.storeCall({ try await server.store.job(id: id) }), caller.sees(tenant: job.tenant) else {
            throw Problem.notFound("job \(id) not found")
        }
        return job
    }

    /// The job with this name among those the caller sees: its own tenant's first; for an
    /// operator or admin, the only one of that name in any tenant (409 naming the ids when
    /// several tenants use the name).
    func job(named name: String) async throws -> Job {
        let caller = try server.caller
        let visible = try await server.storeCall { try await server.store.jobs(named: name) }.filter { caller.sees(tenant: $0.tenant) }
        if let own = visible.first(where: { ExactName.same($0.tenant, caller.token.tenant) }) { return own }
        guard let first = visible.first else { throw Problem.notFound("no job named \"\(name)\"", field: "name") }
        if visible.count > 1 {
            throw Problem.conflict("\(visible.count) jobs are named \"\(name)\" in different tenants (ids "
                                   + visible.map { String($0.id) }.joined(separator: ", ") + "); use /jobs/{id}")
        }
        return first
    }

    static func secretNote(_ secrets: [String: String]) -> String {
        secrets.isEmpty ? "" : ", secret variables " + secrets.keys.sorted().joined(separator: ", ")
    }

    // MARK: Validation

    func newJob(_ json: JSON) throws(Problem) -> NewJob {
        let body = try BodyReader(json, allowed: Self.createFields)
        var job = NewJob(name: try body.requiredString("name"), scriptType: ScriptType(try body.requiredString("script_type")),
                         scriptContent: try body.requiredString("script_content"))
        try apply(body, to: &job)
        if let secrets = try body.stringMap("secret_environment") {
            job.secretEnvironment = try seal(secrets)
        }
        if let schedule = try ScheduleReader.read(body, current: nil) { job.schedule = schedule }
        if let retry = try RetryReader.read(body, current: nil) { job.retry = retry }
        if let callback = try CallbackReader.read(body) { job.callback = callback }
        try validate(job)
        return job
    }

    /// The patch a PATCH body asks for, and the names of the secret variables it clears.
    ///
    /// Secrets follow the script they were given for: a patch that changes the script, the
    /// script type or the policy clears every secret variable the same request does not supply
    /// again (otherwise whoever may edit the script could print the secrets).
    func jobPatch(_ json: JSON, current: Job) throws(Problem) -> (JobPatch, cleared: [String]) {
        let body = try BodyReader(json, allowed: Self.createFields)
        var merged = NewJob(name: current.name, scriptType: current.scriptType, scriptContent: current.scriptContent,
                            policy: current.policy, limits: current.limits, concurrency: current.concurrency,
                            arguments: current.arguments, environment: current.environment)
        if let name = try body.string("name") { merged.name = name }
        if let type = try body.string("script_type") { merged.scriptType = ScriptType(type) }
        if let content = try body.string("script_content") { merged.scriptContent = content }
        try apply(body, to: &merged)
        // Secrets merge (their values cannot be read back to resend): a name with a value is
        // set, a name with null removed, a name absent kept.
        merged.secretEnvironment = current.secretEnvironment
        var secretsChanged = false
        let scriptChanged = !ExactName.same(merged.scriptContent, current.scriptContent)
            || !ExactName.same(merged.scriptType.rawValue, current.scriptType.rawValue) || !ExactName.same(merged.policy, current.policy)
        if scriptChanged, !current.secretEnvironment.isEmpty {
            merged.secretEnvironment = [:]
            secretsChanged = true
        }
        if let changes = try body.nullableStringMap("secret_environment") {
            let sealed = try seal(changes.compactMapValues { $0 })
            for (name, value) in changes {
                merged.secretEnvironment[name] = value == nil ? nil : sealed[name]
            }
            secretsChanged = true
        }
        let schedule = try ScheduleReader.read(body, current: current.schedule)
        try validate(merged)
        let cleared = scriptChanged ? current.secretEnvironment.keys.filter { merged.secretEnvironment[$0] == nil }.sorted() : []
        var patch = JobPatch(name: merged.name, scriptType: merged.scriptType, scriptContent: merged.scriptContent,
                         policy: merged.policy, limits: merged.limits, concurrency: merged.concurrency,
                         arguments: merged.arguments, environment: merged.environment,
                         secretEnvironment: secretsChanged ? merged.secretEnvironment : nil,
                         files: body.has("files") ? merged.files : nil, outputs: body.has("outputs") ? merged.outputs : nil)
        patch.schedule = schedule
        patch.retry = try RetryReader.read(body, current: current.retry)
        patch.callback = try CallbackReader.read(body)
        return (patch, cleared)
    }

    /// Secret values sealed with the server's key.
    private func seal(_ secrets: [String: String]) throws(Problem) -> [String: String] {
        guard !secrets.isEmpty else { return [:] }
        guard let box = server.secrets else {
            throw .validation("secret_environment", "this server has no secrets key; secret_environment cannot be stored")
        }
        var sealed: [String: String] = [:]
        for (name, value) in secrets {
            guard !value.utf8.contains(0) else {
                throw .validation("secret_environment.\(name)", "secret_environment: \(name) contains a NUL byte")
            }
            do { sealed[name] = try box.seal(value) } catch {
                throw Problem("internal", .internalServerError, "sealing secret_environment.\(name) failed: \(error)")
            }
        }
        return sealed
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
        if let files = try body.inputFiles(maxBytes: server.engine.configuration.maxFilesBytes) { job.files = files }
        if let outputs = try body.outputPatterns() { job.outputs = outputs }
    }

    /// What the engine would refuse at run time, refused when the job is stored: name, script
    /// type, size, policy, limits and environment.
    func validate(_ job: NewJob) throws(Problem) {
        // Kept verbatim and compared byte for byte (`ExactName`): "jos\u{e9}" and "jose\u{301}"
        // are two names.
        if let problem = ExactName.problem(job.name, field: "name", characters: Self.nameCharacters, bytes: Self.nameBytes) {
            throw .validation("name", problem)
        }
        if job.name.contains("/") {
            throw .validation("name", "name may not contain \"/\" (it is used in /jobs/by_name/{name})")
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
        for (key, names) in [("environment", job.environment.keys.sorted()), ("secret_environment", job.secretEnvironment.keys.sorted())] {
            for name in names {
                guard name.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil else {
                    throw .validation("\(key).\(name)", "\(key): \"\(name)\" is not a valid variable name")
                }
                guard policy.environment.allows(name) else {
                    throw .validation("\(key).\(name)", "\(key): \(name) is not allowed by policy \(policy.name)")
                }
            }
        }
        if let both = job.environment.keys.sorted().first(where: { job.secretEnvironment[$0] != nil }) {
            throw .validation("secret_environment.\(both)", "\(both) is in both environment and secret_environment; keep one")
        }
        if let caller = Caller.current {
            try Quotas.check(policy, token: caller.token, policies: policies)
        }
        for (i, argument) in job.arguments.enumerated() where argument.utf8.contains(0) {
            throw .validation("arguments[\(i)]", "arguments[\(i)] contains a NUL byte")
        }
    }
}
