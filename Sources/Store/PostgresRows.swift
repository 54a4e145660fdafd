import Domain
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// A statement built piece by piece: each bound value becomes `$n` in the text, in order.
struct SQL: Sendable {
    private(set) var text: String
    private(set) var binds = PostgresBindings()

    init(_ text: String = "") { self.text = text }

    /// The placeholder of `value`, bound now.
    mutating func bind<T: PostgresDynamicTypeEncodable>(_ value: T) -> String {
        binds.append(value)
        return "$\(binds.count)"
    }

    mutating func bind<T: PostgresDynamicTypeEncodable>(_ value: T?) -> String {
        binds.append(value)
        return "$\(binds.count)"
    }

    /// Bytes, as BYTEA.
    mutating func bind(_ value: Data) -> String { bind(ByteBuffer(bytes: value)) }

    mutating func bind(_ value: Data?) -> String { bind(value.map { ByteBuffer(bytes: $0) }) }

    mutating func append(_ more: String) { text += more }

    var query: PostgresQuery { PostgresQuery(unsafeSQL: text, binds: binds) }
}

extension PostgresConnection {
    /// Every row of `query`.
    func all(_ query: PostgresQuery, _ logger: Logger) async throws -> [PostgresRow] {
        try await self.query(query, logger: logger).collect()
    }

    /// The first row of `query`, if any.
    func first(_ query: PostgresQuery, _ logger: Logger) async throws -> PostgresRow? {
        try await self.query(query, logger: logger).collect().first
    }

    /// How many rows a guarded statement changed: it ends with `RETURNING 1` (or any column).
    func changed(_ query: PostgresQuery, _ logger: Logger) async throws -> Int {
        try await self.query(query, logger: logger).collect().count
    }
}

/// Rows of the PostgreSQL schema as Domain values, read by position from the statements of
/// `Records` (the same column lists and order as SQLite's).
enum PostgresRecords {
    static func job(_ row: PostgresRow) throws -> Job {
        let r = row.makeRandomAccess()
        typealias C = Records.JobColumn
        func s(_ c: C) throws -> String { try r[c.rawValue].decode(String.self) }
        var job = Job(id: try r[C.id.rawValue].decode(Int64.self), name: try s(.name), scriptType: ScriptType(try s(.scriptType)),
                      scriptContent: try s(.scriptContent), policy: try s(.policy),
                      limits: JSONText.decode([String].self, try s(.limits), empty: []),
                      concurrency: ConcurrencyRule(rawValue: try s(.concurrency)) ?? .forbid,
                      arguments: JSONText.decode([String].self, try s(.arguments), empty: []),
                      environment: JSONText.decode([String: String].self, try s(.environment), empty: [:]),
                      secretEnvironment: JSONText.decode([String: String].self, try s(.secretEnvironment), empty: [:]),
                      tenant: Records.tenant(try s(.tenant)), createdBy: try r[C.createdBy.rawValue].decode(Int64?.self),
                      files: JSONText.decode([InputFileEntry].self, try s(.filesIndex), empty: []),
                      createdAt: Millis.date(try r[C.createdAt.rawValue].decode(Int64.self)),
                      updatedAt: Millis.date(try r[C.updatedAt.rawValue].decode(Int64.self)))
        job.outputs = JSONText.decode([String].self, try s(.outputs), empty: [])
        job.schedule = try schedule(r)
        job.retry = JSONText.decode(RetryPolicy?.self, try r[C.retry.rawValue].decode(String?.self), empty: nil)
        job.callback = JSONText.decode(WebhookCallback?.self, try r[C.callback.rawValue].decode(String?.self), empty: nil)
        return job
    }

    /// A job row's schedule (nil when `schedule_cron` is NULL), as SQLite's `Records.schedule`.
    static func schedule(_ r: PostgresRandomAccessRow) throws -> JobSchedule? {
        typealias C = Records.JobColumn
        func os(_ c: C) throws -> String? { try r[c.rawValue].decode(String?.self) }
        func od(_ c: C) throws -> Date? { try r[c.rawValue].decode(Int64?.self).map(Millis.date) }
        guard let cron = try os(.scheduleCron) else { return nil }
        return JobSchedule(cron: cron, timezone: try os(.scheduleTimezone) ?? "UTC",
                           overlap: try os(.scheduleOverlap).flatMap(ScheduleOverlap.init(rawValue:)) ?? .skip,
                           catchUp: try os(.scheduleCatchUp).flatMap(ScheduleCatchUp.init(rawValue:)) ?? .none,
                           enabled: try r[C.scheduleEnabled.rawValue].decode(Bool?.self) ?? false, nextRunAt: try od(.nextRunAt),
                           lastSlotAt: try od(.lastSlotAt), lastSkippedAt: try od(.lastSkippedAt),
                           lastSkipReason: try os(.lastSkipReason))
    }

    /// The execution of a row of `Records.executionSelect` or `executionSummarySelect`, its
    /// output empty.
    static func execution(_ row: PostgresRow) throws -> Execution {
        try execution(row.makeRandomAccess())
    }

    static func execution(_ r: PostgresRandomAccessRow) throws -> Execution {
        typealias C = Records.ExecutionColumn
        func s(_ c: C) throws -> String { try r[c.rawValue].decode(String.self) }
        func os(_ c: C) throws -> String? { try r[c.rawValue].decode(String?.self) }
        func i(_ c: C) throws -> Int64 { try r[c.rawValue].decode(Int64.self) }
        func oi(_ c: C) throws -> Int64? { try r[c.rawValue].decode(Int64?.self) }
        func b(_ c: C) throws -> Bool { try r[c.rawValue].decode(Bool.self) }
        var execution = Execution(
            id: try i(.id), jobID: try oi(.jobID),
            status: ExecutionStatus(rawValue: try s(.status)) ?? .failed,
            verdict: try os(.verdict).flatMap(ExecutionVerdict.init(rawValue:)),
            exitCode: try oi(.exitCode).map { Int32(truncatingIfNeeded: $0) }, signal: try oi(.signal).map { Int32(truncatingIfNeeded: $0) },
            reason: try os(.reason),
            scriptType: ScriptType(try s(.scriptType)), scriptSnapshot: try s(.scriptSnapshot),
            policyName: try s(.policyName), policySnapshot: try s(.policySnapshot),
            arguments: JSONText.decode([String].self, try os(.arguments), empty: []),
            environment: JSONText.decode([String: String].self, try os(.environment), empty: [:]),
            stdin: try r[C.stdin.rawValue].decode(Data?.self), priority: Int(try i(.priority)),
            stdoutBytes: try i(.stdoutBytes), stderrBytes: try i(.stderrBytes),
            stdoutTruncated: try b(.stdoutTruncated), stderrTruncated: try b(.stderrTruncated),
            usage: ResourceUsage(wallMs: try i(.wallMs), cpuMs: try i(.cpuMs), memoryPeakBytes: try oi(.memoryPeakBytes)),
            createdAt: Millis.date(try i(.createdAt)), startedAt: try oi(.startedAt).map(Millis.date),
            finishedAt: try oi(.finishedAt).map(Millis.date), worker: try os(.worker), leaseDeadline: try oi(.leaseDeadline).map(Millis.date),
            cancelRequested: try b(.cancelRequested), takeovers: Int(try i(.takeovers)),
            secretEnvironment: JSONText.decode([String: String].self, try os(.secretEnvironment), empty: [:]),
            tenant: Records.tenant(try s(.tenant)), submittedBy: try oi(.submittedBy),
            weakerIsolation: JSONText.decode([String].self, try os(.weakerIsolation), empty: []))
        execution.outputs = JSONText.decode([String].self, try os(.outputs), empty: [])
        execution.denied = try os(.denied).map { JSONText.decode([DeniedSyscall].self, $0, empty: []) }
        execution.trigger = ExecutionTrigger(rawValue: try s(.trigger)) ?? .api
        execution.scheduledFor = try oi(.scheduledFor).map(Millis.date)
        execution.attempt = Int(try i(.attempt))
        execution.retryOf = try oi(.retryOf)
        execution.notBefore = try oi(.notBefore).map(Millis.date)
        execution.callback = JSONText.decode(WebhookCallback?.self, try os(.callback), empty: nil)
        return execution
    }

    static func token(_ row: PostgresRow) throws -> (AccessToken, Data) {
        let r = row.makeRandomAccess()
        func oi(_ i: Int) throws -> Int64? { try r[i].decode(Int64?.self) }
        let policies = try r[4].decode(String?.self)
        let token = AccessToken(
            id: try r[0].decode(Int64.self), name: try r[1].decode(String.self),
            role: Role(rawValue: try r[2].decode(String.self)) ?? .viewer, tenant: try r[3].decode(String.self),
            policies: policies.map { JSONText.decode([String].self, $0, empty: []) }, maxPolicy: try r[5].decode(String?.self),
            maxActive: try oi(6).map(Int.init), createdAt: Millis.date(try r[7].decode(Int64.self)),
            expiresAt: try oi(8).map(Millis.date), lastUsedAt: try oi(9).map(Millis.date), revokedAt: try oi(10).map(Millis.date),
            createdBy: try oi(11), maxPriority: try oi(13).map(Int.init))
        return (token, try r[12].decode(Data.self))
    }

    static func audit(_ row: PostgresRow) throws -> AuditEntry {
        let r = row.makeRandomAccess()
        let role = try r[4].decode(String?.self)
        return AuditEntry(id: try r[0].decode(Int64.self), at: Millis.date(try r[1].decode(Int64.self)),
                          tokenID: try r[2].decode(Int64?.self), tokenName: try r[3].decode(String?.self),
                          role: role.flatMap(Role.init(rawValue:)), action: try r[5].decode(String.self),
                          targetType: try r[6].decode(String.self), targetID: try r[7].decode(String?.self),
                          address: try r[8].decode(String?.self), detail: try r[9].decode(String?.self))
    }
}
