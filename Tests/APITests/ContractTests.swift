@testable import API
import Domain
import Foundation
import Sandbox
import Testing
import Wire

/// The API document and the wire types agree: every schema has its Swift type and every wire
/// type its schema, with the same members (a member the type demands is one the document
/// promises); the document's examples decode into the types; and what a real server answers
/// has exactly the members of its schema and decodes into its type. The Python response
/// checker and schemathesis (`make test`) stay as the view from outside.
@Suite("Contract")
struct ContractTests {
    /// What a schema of the document is in Swift.
    enum Shape: @unchecked Sendable {  // metatypes only, never mutated
        /// An object: a wire type, and the members the type has beyond this schema (a type that
        /// serves several schemas: an execution with or without its output).
        case object(any Codable.Type, extra: Set<String> = [])
        /// An object whose members are the names of a Swift enumeration (the limits).
        case keys([String])
        /// A string enumeration of a Swift type (`null` allowed when `nullable`).
        case enumeration([String], nullable: Bool = false)
        /// Another schema or null, written `oneOf: [{$ref}, {type: null}]` so that generators
        /// make one type of the other schema (an enumeration stays one enumeration).
        case nullable(String)
        /// A scalar or a collection of scalars.
        case value(Any.Type)
        /// An event frame of a followed output (`text/event-stream`), written by `ServerSentEvents`;
        /// its `data` is one of the object schemas.
        case event(data: String)
    }

    static let outputMembers: Set<String> = ["stdout", "stderr", "stdout_encoding", "stderr_encoding", "stdout_invalid_utf8",
                                             "stderr_invalid_utf8"]
    static let limitNames = LimitName.allCases.map(\.rawValue)

    /// Every schema of the document, and what it is in Swift.
    static let shapes: [String: Shape] = [
        "Id": .value(Int64.self),
        "NullableJobId": .value(Int64?.self),
        "Timestamp": .value(String.self),
        "NullableTimestamp": .value(String?.self),
        "ExecutionStatus": .enumeration(ExecutionStatus.allCases.map(\.rawValue)),
        "Verdict": .enumeration(ExecutionVerdict.allCases.map(\.rawValue)),
        "NullableVerdict": .nullable("Verdict"),
        "Role": .enumeration(Role.allCases.map(\.rawValue)),
        "Concurrency": .enumeration(ConcurrencyRule.allCases.map(\.rawValue)),
        "OutputEncoding": .enumeration(Representations.OutputEncoding.allCases.map(\.rawValue)),
        "ScriptName": .value(String.self),
        "Arguments": .value([String].self),
        "Environment": .value([String: String].self),
        "SecretEnvironment": .value([String: String].self),
        "LimitValue": .value(WireScalar.self),
        "LimitsInput": .keys(limitNames),
        "Limits": .keys(limitNames),
        "PolicyLimits": .keys(limitNames),
        // Only what can be waived (`allow_weaker`): never `user_namespaces`.
        "WeakerIsolation": .enumeration(IsolationFeature.allCases.filter(\.canBeWaived).map(\.rawValue)),
        "JobCreate": .object(WireJobBody.self),
        "JobUpdate": .object(WireJobBody.self),
        "Job": .object(WireJob.self),
        "RunRequest": .object(WireRunRequest.self),
        "RunAccepted": .object(WireRunAccepted.self),
        "AdHocRunRequest": .object(WireAdHocRunRequest.self),
        "InputFiles": .value([WireInputFile].self),
        "InputFile": .object(WireInputFile.self),
        "InputFileEntry": .object(WireInputFileEntry.self),
        "OutputPatterns": .value([String].self),
        "ArtifactList": .object(WireArtifactList.self),
        "Artifact": .object(WireArtifact.self),
        "SkippedArtifact": .object(WireSkippedArtifact.self),
        "BatchRequest": .object(WireBatchRequest.self),
        "BatchRun": .object(WireBatchRun.self),
        "BatchAnswer": .object(WireBatchAnswer.self),
        "BatchResult": .object(WireBatchResult.self),
        "Usage": .object(WireUsage.self),
        "Denied": .value([WireDeniedCall]?.self),
        "DeniedCall": .object(WireDeniedCall.self),
        "Execution": .object(WireExecution.self, extra: ["execution_id"]),
        "RunExecution": .object(WireExecution.self),
        "ExecutionSummary": .object(WireExecution.self, extra: outputMembers.union(["execution_id"])),
        "ExecutionPage": .object(WireExecutionPage.self),
        "FollowEventId": .value(String.self),
        "FollowEvent": .event(data: "any of the four below"),
        "FollowOutputEvent": .event(data: "FollowOutputData"),
        "FollowCappedEvent": .event(data: "FollowCappedData"),
        "FollowEndEvent": .event(data: "ExecutionSummary"),
        "FollowDeletedEvent": .event(data: "FollowDeletedData"),
        "FollowOutputData": .object(WireOutputEvent.self),
        "FollowCappedData": .object(WireCappedEvent.self),
        "FollowDeletedData": .object(WireDeletedEvent.self),
        "Policy": .object(WirePolicy.self),
        "PolicyOutput": .object(WirePolicyOutput.self),
        "PolicyFilesystem": .object(WirePolicyFilesystem.self),
        "PolicyBindMount": .object(WirePolicyBindMount.self),
        "PolicyTmpfs": .object(WirePolicyTmpfs.self),
        "PolicySeccomp": .object(WirePolicySeccomp.self),
        "PolicyEnvironment": .object(WirePolicyEnvironment.self),
        "PolicyReload": .object(WirePolicyReload.self),
        "Runtime": .object(WireRuntime.self),
        "Health": .object(WireHealth.self),
        "Node": .object(WireNode.self),
        "Ready": .object(WireReady.self),
        "TokenCreate": .object(WireTokenBody.self),
        "Token": .object(WireToken.self, extra: ["token"]),
        "TokenCreated": .object(WireToken.self),
        "AuditEntry": .object(WireAuditEntry.self),
        "AuditPage": .object(WireAuditPage.self),
        "Problem": .object(WireProblem.self),
        "ScheduleBody": .object(WireJobScheduleBody.self),
        "Schedule": .object(WireJobSchedule.self),
        "ScheduledJob": .object(WireScheduledJob.self),
        "ScheduleList": .object(WireScheduleList.self),
        "ScheduleOverlap": .enumeration(ScheduleOverlap.allCases.map(\.rawValue)),
        "ScheduleCatchUp": .enumeration(ScheduleCatchUp.allCases.map(\.rawValue)),
        "Trigger": .enumeration(ExecutionTrigger.allCases.map(\.rawValue)),
        "Retry": .object(WireRetry.self),
        "RetryBody": .object(WireRetryBody.self),
        "RetryOn": .enumeration(RetryPolicy.retryable),
        "Callback": .object(WireCallback.self),
        "CallbackBody": .object(WireCallbackBody.self),
        "DeliveryAttempt": .object(WireDeliveryAttempt.self),
        "Delivery": .object(WireDelivery.self),
        "DeliveryList": .object(WireDeliveryList.self),
        "DeliveryStatus": .enumeration(WebhookDeliveryStatus.allCases.map(\.rawValue)),
        "WebhookSecret": .object(WireWebhookSecret.self, extra: ["secret"]),
        "WebhookSecretCreated": .object(WireWebhookSecret.self),
        "WebhookPayload": .object(WireWebhookPayload.self),
    ]

    /// Wire types that are parts of others rather than schemas of their own.
    static let partTypes: Set<String> = ["WireScalar", "WirePolicyMount"]

    static func schemas(_ doc: [String: Any]) throws -> [String: [String: Any]] {
        let components = try #require(doc["components"] as? [String: Any])
        return try #require(components["schemas"] as? [String: [String: Any]])
    }

    static func properties(_ schema: [String: Any]) -> Set<String> {
        Set((schema["properties"] as? [String: Any])?.keys.map { $0 } ?? [])
    }

    static func required(_ schema: [String: Any]) -> Set<String> {
        Set(schema["required"] as? [String] ?? [])
    }

    static func decode(_ type: any Codable.Type, _ value: Any) throws {
        let data = try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])
        _ = try JSONDecoder().decode(type, from: data)
    }

    @Test("Every schema of the document has its Swift type, and every wire type its schema, with the same members")
    func documentAndTypesAgree() async throws {
        try await LiveServer.with { s in
            let schemas = try Self.schemas(await s.get("/openapi.json").object)
            #expect(Set(schemas.keys).subtracting(Self.shapes.keys).sorted() == [], "schemas without a Swift type")
            #expect(Set(Self.shapes.keys).subtracting(schemas.keys).sorted() == [], "types for schemas the document lacks")

            var mapped = Self.partTypes
            for (name, shape) in Self.shapes.sorted(by: { $0.key < $1.key }) {
                guard let schema = schemas[name] else { continue }
                switch shape {
                case .object(let type, let extra):
                    mapped.insert(String(describing: type))
                    let fields = type.wireFields
                    let names = Set(fields.map(\.name))
                    #expect(extra.isSubset(of: names), "\(name): \(type) lacks \(extra.subtracting(names).sorted())")
                    #expect(names.subtracting(extra) == Self.properties(schema),
                            "\(name) ↔ \(type): only in the type \(names.subtracting(extra).subtracting(Self.properties(schema)).sorted()), only in the document \(Self.properties(schema).subtracting(names).sorted())")
                    let demanded = Set(fields.filter(\.required).map(\.name))
                    #expect(demanded.isSubset(of: Self.required(schema)),
                            "\(type) demands \(demanded.subtracting(Self.required(schema)).sorted()), which \(name) does not promise")
                case .keys(let keys):
                    #expect(Self.properties(schema) == Set(keys), "\(name): \(Self.properties(schema).sorted()) ≠ \(keys)")
                case .enumeration(let cases, let nullable):
                    let listed = (schema["enum"] ?? (schema["items"] as? [String: Any])?["enum"]) as? [Any] ?? []
                    let strings = listed.compactMap { $0 as? String }
                    #expect(Set(strings) == Set(cases), "\(name): \(strings) ≠ \(cases)")
                    #expect((listed.count > strings.count) == nullable, "\(name): null allowed must be \(nullable)")
                case .nullable(let other):
                    let parts = schema["oneOf"] as? [[String: Any]] ?? []
                    #expect(parts.count == 2 && parts.contains { $0["$ref"] as? String == "#/components/schemas/\(other)" }
                            && parts.contains { $0["type"] as? String == "null" }, "\(name): \(schema)")
                case .value, .event:
                    break
                }
            }
            let catalog = Set(WireCatalog.types.map { String(describing: $0) })
            #expect(catalog.subtracting(mapped).sorted() == [], "wire types without a schema")
        }
    }

    @Test("The document's examples decode into the wire types")
    func examplesDecode() async throws {
        try await LiveServer.with { s in
            let doc = try await s.get("/openapi.json").object
            let schemas = try Self.schemas(doc)
            var decoded = 0
            for (name, schema) in schemas {
                guard case .object(let type, _) = Self.shapes[name] else { continue }
                for example in schema["examples"] as? [Any] ?? [] {
                    #expect(throws: Never.self, "\(name)'s example as \(type)") { try Self.decode(type, example) }
                    decoded += 1
                }
            }
            // Examples of responses: `content.application/json.example(s)` with a `$ref` schema.
            let paths = try #require(doc["paths"] as? [String: [String: Any]])
            for (_, item) in paths {
                for case let operation as [String: Any] in item.values {
                    for case let response as [String: Any] in (operation["responses"] as? [String: Any] ?? [:]).values {
                        for case let media as [String: Any] in (response["content"] as? [String: Any] ?? [:]).values {
                            guard let ref = (media["schema"] as? [String: Any])?["$ref"] as? String,
                                  case .object(let type, _) = Self.shapes[String(ref.split(separator: "/").last ?? "")] else { continue }
                            var examples = (media["examples"] as? [String: Any] ?? [:]).values.compactMap { ($0 as? [String: Any])?["value"] }
                            if let example = media["example"] { examples.append(example) }
                            for example in examples {
                                #expect(throws: Never.self, "\(ref)'s example as \(type)") { try Self.decode(type, example) }
                                decoded += 1
                            }
                        }
                    }
                }
            }
            #expect(decoded >= 4, "the document's examples were not found")
        }
    }

    /// The answer has exactly the members its schema allows and promises, and decodes into its type.
    static func expect(_ answer: HTTPAnswer, is name: String, in schemas: [String: [String: Any]],
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let schema = try #require(schemas[name], sourceLocation: sourceLocation)
        guard case .object(let type, _) = shapes[name] else { Issue.record("\(name) is no object", sourceLocation: sourceLocation); return }
        let members = Set(answer.object.keys)
        #expect(required(schema).isSubset(of: members),
                "\(name) answered without \(required(schema).subtracting(members).sorted()): \(answer)", sourceLocation: sourceLocation)
        if schema["additionalProperties"] as? Bool == false {
            #expect(members.isSubset(of: properties(schema)),
                    "\(name) answered with \(members.subtracting(properties(schema)).sorted()), not in the document", sourceLocation: sourceLocation)
        }
        #expect(throws: Never.self, "\(answer) as \(type)", sourceLocation: sourceLocation) {
            _ = try JSONDecoder().decode(type, from: answer.body)
        }
    }

    @Test("What the server answers has the members of its schema and decodes into its wire type")
    func answersMatchTheTypes() async throws {
        try await LiveServer.with { s in
            let schemas = try Self.schemas(await s.get("/openapi.json").object)
            let created = try await s.post("/jobs", #"{"name": "contract", "script_type": "bash", "script_content": "echo hi", "limits": {"memory": "64MiB"}}"#)
            try Self.expect(created, is: "Job", in: schemas)
            let job = try JSONDecoder().decode(WireJob.self, from: created.body)
            #expect(job.name == "contract" && job.limits["memory"]?.description == "64MiB")

            let accepted = try await s.post("/executions/\(job.id)/run", "{}")
            try Self.expect(accepted, is: "RunAccepted", in: schemas)
            let id = try JSONDecoder().decode(WireRunAccepted.self, from: accepted.body).execution_id
            _ = try await s.waitFinal(Int(id))
            try Self.expect(try await s.get("/executions/\(id)"), is: "Execution", in: schemas)
            let waited = try await s.post("/executions/\(job.id)/run", #"{"wait": true, "priority": 5}"#)
            try Self.expect(waited, is: "RunExecution", in: schemas)
            #expect(try JSONDecoder().decode(WireExecution.self, from: waited.body).stdout == "hi\n")
            let adHoc = try await s.post("/executions", #"{"script_type": "bash", "script_content": "echo one"}"#)
            #expect(adHoc.status == 201)
            try Self.expect(adHoc, is: "RunAccepted", in: schemas)
            let adHocWaited = try await s.post("/executions", #"{"script_type": "bash", "script_content": "echo two", "wait": true}"#)
            try Self.expect(adHocWaited, is: "RunExecution", in: schemas)
            #expect(try JSONDecoder().decode(WireExecution.self, from: adHocWaited.body).job_id == nil)
            let page = try await s.get("/executions?limit=1")
            try Self.expect(page, is: "ExecutionPage", in: schemas)
            for summary in try #require(page.object["executions"] as? [[String: Any]]) {
                let members = Set(summary.keys)
                #expect(members == Self.properties(try #require(schemas["ExecutionSummary"])), "\(summary)")
            }

            let token = try await s.post("/tokens", #"{"name": "contract-viewer", "role": "viewer", "expires_in": "1d"}"#)
            try Self.expect(token, is: "TokenCreated", in: schemas)
            let tokens = try await s.get("/tokens")
            for listed in tokens.array {
                #expect(Set(listed.keys) == Self.properties(try #require(schemas["Token"])), "\(listed)")
            }
            #expect(throws: Never.self) { _ = try JSONDecoder().decode([WireToken].self, from: tokens.body) }
            try Self.expect(try await s.get("/audit"), is: "AuditPage", in: schemas)
            try Self.expect(try await s.get("/health"), is: "Health", in: schemas)
            try Self.expect(try await s.get("/ready"), is: "Ready", in: schemas)
            try Self.expect(try await s.get("/policies/default"), is: "Policy", in: schemas)
            let runtimes = try await s.get("/runtimes")
            #expect(!runtimes.array.isEmpty)
            #expect(throws: Never.self) { _ = try JSONDecoder().decode([WireRuntime].self, from: runtimes.body) }
            let nodes = try await s.get("/nodes")
            #expect(nodes.array.count == 1, "this server, alive: \(nodes.text)")
            for node in nodes.array {
                #expect(Set(node.keys) == Self.properties(try #require(schemas["Node"])), "\(node)")
                #expect(node["state"] as? String == "alive" && node["running"] as? Int == 0)
            }
            #expect(throws: Never.self) { _ = try JSONDecoder().decode([WireNode].self, from: nodes.body) }
            let missing = try await s.get("/jobs/999999")
            #expect(missing.status == 404)
            try Self.expect(missing, is: "Problem", in: schemas)
        }
    }

    @Test("The members a schema may leave out are those its wire type leaves out when nil; the others are written, null when empty")
    func absentMembersAgree() throws {
        let document = try JSONSerialization.jsonObject(with: Data(try OpenAPIDocument.shared().tree.encoded()))
        let schemas = try Self.schemas(try #require(document as? [String: Any]))
        var answered = 0
        for (name, shape) in Self.shapes.sorted(by: { $0.key < $1.key }) {
            guard case .object(let type, _) = shape, let answer = type as? any WireAnswer.Type,
                  let schema = schemas[name] else { continue }
            answered += 1
            let names = Set(type.wireNames)
            #expect(answer.absentWhenNil.isSubset(of: names), "\(type) leaves out members it lacks: \(answer.absentWhenNil.subtracting(names).sorted())")
            // A member the schema does not require must not be written as null where the type has no value.
            let optional = Self.properties(schema).subtracting(Self.required(schema))
            #expect(optional.isSubset(of: answer.absentWhenNil),
                    "\(name) may lack \(optional.subtracting(answer.absentWhenNil).sorted()), which \(type) would write as null")
        }
        #expect(answered >= 4, "no answered schema has a WireAnswer type")
        // Every member a type leaves out is one some schema it serves may lack (or lacks).
        for type in WireCatalog.types {
            guard let answer = type as? any WireAnswer.Type else { continue }
            let served = Self.shapes.compactMap { name, shape -> [String: Any]? in
                guard case .object(let t, _) = shape, t == type else { return nil }
                return schemas[name]
            }
            let mayLack = served.reduce(into: Set<String>()) { set, schema in
                set.formUnion(Set(type.wireNames).subtracting(Self.required(schema)))
            }
            #expect(answer.absentWhenNil.isSubset(of: mayLack), "\(type) leaves out \(answer.absentWhenNil.subtracting(mayLack).sorted()), which every schema it serves requires")
        }
    }

    @Test("The server accepts in bodies exactly the members of the wire types")
    func bodyFieldsAreTheWireTypes() {
        #expect(JobRoutes.createFields == ["name", "script_type", "script_content", "policy", "limits", "concurrency", "arguments",
                                           "environment", "secret_environment", "files", "outputs", "schedule", "retry", "callback", "callback_url"])
        #expect(ExecutionRoutes.runFields == ["stdin", "stdin_base64", "arguments", "environment", "limits", "priority", "wait",
                                              "wait_timeout", "files", "outputs", "callback", "callback_url"])
        #expect(AdHocRoutes.fields == ["script_type", "script_content", "policy", "stdin", "stdin_base64", "arguments", "environment",
                                       "limits", "priority", "wait", "wait_timeout", "files", "outputs", "callback", "callback_url"])
        #expect(AccessRoutes.createFields == ["name", "role", "tenant", "policies", "max_policy", "max_active", "max_priority",
                                              "expires_in", "expires_at"])
        #expect(WireJob.wireFields.filter(\.required).map(\.name) == ["id", "name", "script_type", "script_content", "policy", "limits",
                                                                       "concurrency", "arguments", "environment", "created_at", "updated_at"])
    }
}
