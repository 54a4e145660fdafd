import Domain
import Foundation

/// Persistence of jobs, executions and their output: what the engine and the API rely on.
///
/// Every transition is one transaction guarded on the current status, so an execution can
/// never be finished twice or go back. The protocol assumes nothing of SQLite: a PostgreSQL
/// implementation can follow for several worker machines (claim with
/// `FOR UPDATE SKIP LOCKED`, leases renewed by a heartbeat, expired leases taken over).
/// Methods throw `StoreError`.
public protocol ExecutionStore: NodeStore, ScheduleStore, WebhookStore {
    // MARK: Jobs
    func createJob(_ job: NewJob) async throws -> Job
    func job(id: Int64) async throws -> Job?
    func job(named name: String) async throws -> Job?
    /// Every job with this name (one per tenant at most), by id.
    func jobs(named name: String) async throws -> [Job]
    /// All jobs, or those of one script type and/or one tenant, by id.
    func jobs(scriptType: ScriptType?, tenant: String?) async throws -> [Job]
    /// One page of those jobs, by id: at most `limit` with ids above `afterID` (nil: from the first).
    func jobs(scriptType: ScriptType?, tenant: String?, afterID: Int64?, limit: Int) async throws -> [Job]
    /// The ids of that page (cheap: no job is read).
    func jobIDs(scriptType: ScriptType?, tenant: String?, afterID: Int64?, limit: Int) async throws -> [Int64]
    func updateJob(id: Int64, _ patch: JobPatch) async throws -> Job
    /// Deletes a job and its executions; refused (`.conflict`) while one is pending or running.
    func deleteJob(id: Int64) async throws
    /// A job's input files with their bytes ([] for none, or no such job).
    func jobFiles(id: Int64) async throws -> [InputFile]
    /// The input files an execution was given (its job's and its run's, merged when it was
    /// submitted), with their bytes.
    func executionFiles(id: Int64) async throws -> [InputFile]
    /// The files collected from an execution's working directory, and those skipped (both
    /// empty for none); nil when the execution does not exist.
    func artifacts(executionID: Int64) async throws -> (execution: Execution, files: [Artifact], skipped: [SkippedArtifact])?
    /// One collected file with its bytes; nil when the execution or the file does not exist.
    func artifact(executionID: Int64, path: String) async throws -> (execution: Execution, artifact: Artifact, content: Data)?

    // MARK: Executions
    /// Stores a new PENDING execution, applying the job's concurrency rule, the submitter's
    /// quota and the queue bound atomically: `.conflict` for `forbid` while the job has one
    /// pending or running, `.quotaExceeded` when the submitting token already has `maxActive`
    /// pending or running, `.queueFull` when `queueLimit` executions are already pending.
    /// The execution takes the job's tenant. Nothing is half-stored.
    func enqueue(_ execution: NewExecution, queueLimit: Int) async throws -> Execution
    /// Takes the next runnable PENDING execution (highest priority first, then oldest), makes
    /// it RUNNING for `worker` with a lease until `leaseUntil`. A `queue` job's execution is
    /// not runnable while another of the same job runs. Also takes over RUNNING executions
    /// whose lease expired before `now` (another worker died), before any PENDING one: the
    /// take-over keeps `startedAt`, counts one more in `takeovers`, and clears the partial
    /// output of the dead run (the new worker runs the script from its start).
    func claimNext(worker: String, leaseUntil: Date, now: Date) async throws -> Execution?
    /// Extends a running execution's lease; `.notFound` when it is no longer this worker's.
    func renewLease(executionID: Int64, worker: String, until: Date) async throws
    /// Adds captured output of a RUNNING execution (already capped by the sandbox): `stdout`
    /// holds the stream's bytes from `stdoutOffset` on, `stderr` from `stderrOffset`; and sets the
    /// byte counts written so far, so that readers see partial output. Bytes a stream already
    /// has stored are skipped (an append repeated after an uncertain failure stores nothing
    /// twice); an offset past what is stored is refused (`.invalid`): output has no gaps.
    func appendOutput(executionID: Int64, stdout: Data, stdoutOffset: Int64, stderr: Data, stderrOffset: Int64,
                      stdoutBytes: Int64, stderrBytes: Int64) async throws
    /// RUNNING → the outcome's final status; `.invalidTransition` if it is not RUNNING. The
    /// stored output becomes the outcome's (see `ExecutionOutcome.stdoutOffset`). Returns the
    /// execution as stored without its output (`stdout` and `stderr` empty, which can be a
    /// cap's worth of bytes: `execution(id:)` reads them).
    func finish(executionID: Int64, _ outcome: ExecutionOutcome) async throws -> Execution
    /// `finish`, then `claimNext` for the worker going on to its next run (`claim`; nil claims
    /// nothing) — in the same transaction where the store can: a worker's cycle is one write
    /// fewer. The finish is stored whatever the claim does: a claim that fails returns no next
    /// execution (the worker then claims on its own, and hears why).
    func finish(executionID: Int64, _ outcome: ExecutionOutcome,
                thenClaim claim: ClaimRequest?) async throws -> (finished: Execution, next: Execution?)
    /// PENDING → CANCELLED at once. For a RUNNING one, records the request (the engine kills
    /// the sandbox and finishes it as CANCELLED). Returns the execution as it is now;
    /// `.invalidTransition` when it is already final.
    func cancel(executionID: Int64, now: Date) async throws -> Execution
    /// Whether cancellation of a RUNNING execution was requested.
    func isCancelRequested(executionID: Int64) async throws -> Bool
    /// After a crash: every RUNNING execution (of `worker`, or of all when nil) becomes FAILED
    /// with verdict `interrupted` and `reason`. Returns them.
    func interruptRunning(worker: String?, reason: String, now: Date) async throws -> [Execution]
    func execution(id: Int64) async throws -> Execution?
    /// The execution (without its output) and a part of its stored output read in one snapshot:
    /// each stream's bytes from the given offset on, `limit` bytes at most in all (shared between
    /// the streams when both have more); nil when the execution does not exist. What a client
    /// following the output reads, piece by piece, without loading a whole stream.
    func output(executionID: Int64, stdoutFrom: Int64, stderrFrom: Int64, limit: Int) async throws -> OutputSlice?
    /// A page of executions, newest first, with a cursor for the next page; each as clients are
    /// answered it (see `OutputSlice.execution`: no snapshots, environment, stdin or secrets).
    func executions(_ query: ExecutionQuery) async throws -> ExecutionPage
    /// How many executions are PENDING.
    func pendingCount() async throws -> Int
    /// Queues a retry of an ended execution (one interrupted by a crash, found at start): a copy
    /// with the given attempt and not-before, `retry_of` the execution.
    func enqueueRetry(of executionID: Int64, _ retry: RetryRequest) async throws -> Execution
    /// The earliest not-before of the PENDING executions that are not due at `now` (nil: none),
    /// when the workers must look again.
    func nextNotBefore(after now: Date) async throws -> Date?
    /// Deletes finished executions beyond the newest `keepPerJob` of each job and/or finished
    /// before `olderThan`. Returns how many were deleted.
    func prune(keepPerJob: Int?, olderThan: Date?) async throws -> Int
    /// One secret value as stored (sealed with the secrets key), or nil when no job has any: a
    /// server starting checks that its key opens it (every node sharing a database needs the
    /// same key).
    func sealedValueSample() async throws -> String?
    /// Why the store takes no new data now (`.diskFull`), or nil. Cheap enough for a readiness
    /// check; asking may itself end a full state whose disk has room again.
    func refusalOfNewData() async -> StoreError?
    /// The version of the finished executions, cheap to read (no query): it changes whenever
    /// any process deletes executions, the only change a finished execution can undergo. A
    /// server may answer a finished execution from memory while it stays the same. nil: unknown
    /// (every read goes to the store); the default.
    func finishedExecutionsVersion() -> String?
}

public extension ExecutionStore {
    func finishedExecutionsVersion() -> String? { nil }

    /// All jobs, or those of one script type, by id.
    func jobs(scriptType: ScriptType?) async throws -> [Job] { try await jobs(scriptType: scriptType, tenant: nil) }

    /// Two transactions: `finish`, then `claimNext`.
    func finish(executionID: Int64, _ outcome: ExecutionOutcome,
                thenClaim claim: ClaimRequest?) async throws -> (finished: Execution, next: Execution?) {
        let finished = try await finish(executionID: executionID, outcome)
        guard let claim else { return (finished, nil) }
        let next = try? await claimNext(worker: claim.worker, leaseUntil: claim.leaseUntil, now: claim.now)
        return (finished, next ?? nil)
    }
}

/// What `claimNext` is asked: for which worker, its lease, and the time of the claim.
public struct ClaimRequest: Sendable, Equatable {
    public var worker: String
    public var leaseUntil: Date
    public var now: Date

    public init(worker: String, leaseUntil: Date, now: Date) {
        self.worker = worker
        self.leaseUntil = leaseUntil
        self.now = now
    }
}

/// A job to create.
public struct NewJob: Sendable, Equatable {
    public var name: String
    public var scriptType: ScriptType
    public var scriptContent: String
    public var policy: String
    public var limits: [String]
    public var concurrency: ConcurrencyRule
    public var arguments: [String]
    public var environment: [String: String]
    /// Secret variables, values already sealed.
    public var secretEnvironment: [String: String]
    /// The scope the job belongs to (see `Job.tenant`).
    public var tenant: String?
    public var createdBy: Int64?
    /// Input files, written into each run's working directory.
    public var files: [InputFile]
    /// Patterns of the files collected after each run.
    public var outputs: [String] = []
    /// Its schedule (`nextRunAt` computed by the caller).
    public var schedule: JobSchedule?
    /// How its failed runs are retried.
    public var retry: RetryPolicy?
    /// Where to call when one of its runs ends.
    public var callback: WebhookCallback?

    public init(name: String, scriptType: ScriptType, scriptContent: String, policy: String = "default",
                limits: [String] = [], concurrency: ConcurrencyRule = .forbid, arguments: [String] = [],
                environment: [String: String] = [:], secretEnvironment: [String: String] = [:], tenant: String? = nil,
                createdBy: Int64? = nil, files: [InputFile] = []) {
        self.files = files
        self.name = name
        self.scriptType = scriptType
        self.scriptContent = scriptContent
        self.policy = policy
        self.limits = limits
        self.concurrency = concurrency
        self.arguments = arguments
        self.environment = environment
        self.secretEnvironment = secretEnvironment
        self.tenant = tenant
        self.createdBy = createdBy
    }
}

/// Changes to a job; nil fields stay as they are.
public struct JobPatch: Sendable, Equatable {
    public var name: String?
    public var scriptType: ScriptType?
    public var scriptContent: String?
    public var policy: String?
    public var limits: [String]?
    public var concurrency: ConcurrencyRule?
    public var arguments: [String]?
    public var environment: [String: String]?
    /// Replaces all secret variables (values sealed).
    public var secretEnvironment: [String: String]?
    /// Replaces all input files.
    public var files: [InputFile]?
    /// Replaces the output patterns.
    public var outputs: [String]?
    /// nil: unchanged; `.some(nil)`: removed; `.some(policy)`: set.
    public var retry: RetryPolicy??
    /// nil: unchanged; `.some(nil)`: removed; `.some(callback)`: set.
    public var callback: WebhookCallback??
    /// nil: unchanged; `.some(nil)`: removed; `.some(schedule)`: set (its `nextRunAt` computed
    /// by the caller; the slot history — last slot, last skip — is kept).
    public var schedule: JobSchedule??

    public init(name: String? = nil, scriptType: ScriptType? = nil, scriptContent: String? = nil, policy: String? = nil,
                limits: [String]? = nil, concurrency: ConcurrencyRule? = nil, arguments: [String]? = nil,
                environment: [String: String]? = nil, secretEnvironment: [String: String]? = nil, files: [InputFile]? = nil,
                outputs: [String]? = nil, schedule: JobSchedule?? = nil) {
        self.schedule = schedule
        self.files = files
        self.outputs = outputs
        self.name = name
        self.scriptType = scriptType
        self.scriptContent = scriptContent
        self.policy = policy
        self.limits = limits
        self.concurrency = concurrency
        self.arguments = arguments
        self.environment = environment
        self.secretEnvironment = secretEnvironment
    }
}

extension JobPatch {
    /// The job's columns as this patch leaves them: each member given replaces the job's. The
    /// members kept in their own columns or tables (outputs, files, schedule, retry, callback)
    /// are each store's to write.
    public func applyColumns(to job: inout Job) {
        if let v = name { job.name = v }
        if let v = scriptType { job.scriptType = v }
        if let v = scriptContent { job.scriptContent = v }
        if let v = policy { job.policy = v }
        if let v = limits { job.limits = v }
        if let v = concurrency { job.concurrency = v }
        if let v = arguments { job.arguments = v }
        if let v = environment { job.environment = v }
        if let v = secretEnvironment { job.secretEnvironment = v }
    }
}

/// An execution to enqueue, with its snapshots taken by the caller.
public struct NewExecution: Sendable, Equatable {
    /// The job run; nil for an ad-hoc run, whose script comes with the request.
    public var jobID: Int64?
    public var scriptType: ScriptType
    public var scriptSnapshot: String
    public var policyName: String
    public var policySnapshot: String
    public var concurrency: ConcurrencyRule
    public var arguments: [String]
    public var environment: [String: String]
    public var stdin: Data?
    public var priority: Int
    public var createdAt: Date
    /// The job's secret variables, still sealed.
    public var secretEnvironment: [String: String]
    /// The submitting token, and how many of its executions may be pending or running at once.
    public var submittedBy: Int64?
    public var maxActive: Int?
    /// Isolation the submitting server runs without (`Execution.weakerIsolation`).
    public var weakerIsolation: [String]
    /// The tenant of an ad-hoc run (the submitting token's); a job's run takes its job's.
    public var tenant: String?
    /// Input files for its working directory: the job's and the run's, merged.
    public var files: [InputFile] = []
    /// Patterns of the files to collect after it ends.
    public var outputs: [String] = []
    /// What started it, and the schedule's slot it is for.
    public var trigger: ExecutionTrigger = .api
    public var scheduledFor: Date?
    /// Where to call when it ends.
    public var callback: WebhookCallback?
    /// The submission's audit entry, appended in the same transaction with the new execution's
    /// id as its `targetID`.
    public var audit: AuditEntry?

    public init(jobID: Int64?, scriptType: ScriptType, scriptSnapshot: String, policyName: String, policySnapshot: String,
                concurrency: ConcurrencyRule, arguments: [String] = [], environment: [String: String] = [:],
                stdin: Data? = nil, priority: Int = 0, createdAt: Date, secretEnvironment: [String: String] = [:],
                submittedBy: Int64? = nil, maxActive: Int? = nil, weakerIsolation: [String] = [], tenant: String? = nil,
                audit: AuditEntry? = nil) {
        self.audit = audit
        self.tenant = tenant
        self.jobID = jobID
        self.scriptType = scriptType
        self.scriptSnapshot = scriptSnapshot
        self.policyName = policyName
        self.policySnapshot = policySnapshot
        self.concurrency = concurrency
        self.arguments = arguments
        self.environment = environment
        self.stdin = stdin
        self.priority = priority
        self.createdAt = createdAt
        self.secretEnvironment = secretEnvironment
        self.submittedBy = submittedBy
        self.maxActive = maxActive
        self.weakerIsolation = weakerIsolation
    }
}

/// A file collected from an execution's working directory, with its bytes.
public struct CollectedArtifact: Sendable, Equatable {
    public var artifact: Artifact
    public var content: Data

    public init(artifact: Artifact, content: Data) {
        self.artifact = artifact
        self.content = content
    }
}

/// How a RUNNING execution ended.
public struct ExecutionOutcome: Sendable, Equatable {
    public var verdict: ExecutionVerdict
    public var exitCode: Int32?
    public var signal: Int32?
    public var reason: String?
    /// The captured output from `stdoutOffset` / `stderrOffset` on: the stored bytes before
    /// those offsets (appended while running) are kept, everything from them on is replaced by
    /// these bytes. With offsets 0 (the default), the complete output, replacing what was
    /// appended.
    public var stdout: Data
    public var stderr: Data
    public var stdoutOffset: Int64
    public var stderrOffset: Int64
    public var stdoutBytes: Int64
    public var stderrBytes: Int64
    public var stdoutTruncated: Bool
    public var stderrTruncated: Bool
    public var usage: ResourceUsage
    public var finishedAt: Date
    /// When true, `stdout` and `stderr` are ignored: the output stored while the execution ran
    /// stays as it is (the disk had no room for the complete output), and a stream is marked
    /// truncated when less was kept than `stdoutBytes`/`stderrBytes` say was written.
    public var keepsStoredOutput = false
    /// Isolation the run went without (`Execution.weakerIsolation`); replaces what was
    /// recorded at submission, which another server may have had.
    public var weakerIsolation: [String] = []
    /// The files collected from its working directory (with their SHA-256), and those skipped.
    /// Not stored when `keepsStoredOutput` (the disk is full).
    public var artifacts: [CollectedArtifact] = []
    public var skippedArtifacts: [SkippedArtifact] = []
    /// The calls its policy refused (`Execution.denied`); nil when not reported.
    public var denied: [DeniedSyscall]?
    /// A retry to queue in the same transaction (the job's retry policy asked for one): a copy
    /// of this execution, attempt and not-before given, `retry_of` this one.
    public var retry: RetryRequest?

    public init(verdict: ExecutionVerdict, exitCode: Int32? = nil, signal: Int32? = nil, reason: String? = nil,
                stdout: Data = Data(), stderr: Data = Data(), stdoutOffset: Int64 = 0, stderrOffset: Int64 = 0,
                stdoutBytes: Int64 = 0, stderrBytes: Int64 = 0, stdoutTruncated: Bool = false, stderrTruncated: Bool = false,
                usage: ResourceUsage = ResourceUsage(), finishedAt: Date) {
        self.verdict = verdict
        self.exitCode = exitCode
        self.signal = signal
        self.reason = reason
        self.stdout = stdout
        self.stderr = stderr
        self.stdoutOffset = stdoutOffset
        self.stderrOffset = stderrOffset
        self.stdoutBytes = stdoutBytes
        self.stderrBytes = stderrBytes
        self.stdoutTruncated = stdoutTruncated
        self.stderrTruncated = stderrTruncated
        self.usage = usage
        self.finishedAt = finishedAt
    }

    /// The final status this outcome gives.
    public var status: ExecutionStatus { verdict.status(exitCode: exitCode) }
}

/// Which executions to list.
public struct ExecutionQuery: Sendable, Equatable {
    /// Only this job's executions; nil for all.
    public var jobID: Int64?
    /// Only this tenant's executions; nil for every tenant's.
    public var tenant: String?
    /// Only executions in one of these statuses; empty for any.
    public var statuses: [ExecutionStatus]
    /// Only executions with one of these verdicts; empty for any.
    public var verdicts: [ExecutionVerdict]
    /// Only executions created at or after this date.
    public var createdAfter: Date?
    /// Only executions created strictly before this date.
    public var createdBefore: Date?
    /// Ids below this one (the cursor of the previous page); nil for the first page.
    public var before: Int64?
    /// Oldest first (ids above `after`) instead of newest first; `nextCursor` is then the
    /// `after` of the next page.
    public var oldestFirst: Bool = false
    /// With `oldestFirst`: ids above this one; nil for the first page.
    public var after: Int64?
    /// The page size, between 1 and `ExecutionQuery.maximumLimit`.
    public var limit: Int
    /// Whether the executions come with their output (false: `stdout` and `stderr` empty).
    public var withOutput: Bool

    /// The largest page a store returns, whatever `limit` asks.
    public static let maximumLimit = 1000

    public init(jobID: Int64? = nil, statuses: [ExecutionStatus] = [], verdicts: [ExecutionVerdict] = [],
                createdAfter: Date? = nil, createdBefore: Date? = nil, before: Int64? = nil, limit: Int = 100,
                tenant: String? = nil, withOutput: Bool = true) {
        self.jobID = jobID
        self.tenant = tenant
        self.statuses = statuses
        self.verdicts = verdicts
        self.createdAfter = createdAfter
        self.createdBefore = createdBefore
        self.before = before
        self.limit = limit
        self.withOutput = withOutput
    }
}

/// A page of executions, newest first; `nextCursor` is the `before` of the next page.
public struct ExecutionPage: Sendable, Equatable {
    public var executions: [Execution]
    public var nextCursor: Int64?

    public init(executions: [Execution], nextCursor: Int64?) {
        self.executions = executions
        self.nextCursor = nextCursor
    }
}

/// A part of an execution's stored output, with the execution as it was when the part was read.
public struct OutputSlice: Sendable, Equatable {
    /// The execution as clients are answered it: its `stdout` and `stderr` empty, and without
    /// its script and policy snapshots (empty), environment, stdin and secrets (none); read
    /// `execution(id:)` for those.
    public var execution: Execution
    /// Bytes of each stream from the offsets asked for (empty when there are none yet).
    public var stdout: Data
    public var stderr: Data
    /// How many bytes of each stream are stored: all that was captured once the execution is
    /// final, what has been appended so far while it runs.
    public var storedStdout: Int64
    public var storedStderr: Int64

    public init(execution: Execution, stdout: Data, stderr: Data, storedStdout: Int64, storedStderr: Int64) {
        self.execution = execution
        self.stdout = stdout
        self.stderr = stderr
        self.storedStdout = storedStdout
        self.storedStderr = storedStderr
    }
}

/// Why the store refused or failed, in words for the caller (the API maps these to statuses).
public enum StoreError: Error, CustomStringConvertible, Equatable {
    case notFound(String)
    case conflict(String)
    case queueFull(limit: Int)
    /// A token's quota of pending and running executions is used up.
    case quotaExceeded(limit: Int)
    case invalidTransition(executionID: Int64, from: ExecutionStatus, to: String)
    case invalid(String)
    case unavailable(String)
    /// The database's disk has no room for new data (the file named). Running executions still
    /// end; new data is taken again once space returns.
    case diskFull(path: String)

    public var description: String {
        switch self {
        case .notFound(let what): return "\(what) not found"
        case .conflict(let why): return why
        case .queueFull(let limit): return "the queue is full (\(limit) executions pending); retry later"
        case .quotaExceeded(let limit):
            return "\(limit) executions of this token are already pending or running, its most at once; wait for one to end"
        case .invalidTransition(let id, let from, let to): return "execution \(id) is \(from.rawValue); it cannot become \(to)"
        case .invalid(let why): return why
        case .unavailable(let why): return "the store is unavailable: \(why)"
        case .diskFull(let path):
            return """
                the database's disk is full (\(path)): new jobs and executions are refused until space is freed \
                there; running executions still end, and the service resumes by itself once there is room
                """
        }
    }
}
