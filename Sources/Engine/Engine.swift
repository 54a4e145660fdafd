import Domain
import Foundation
import Logging
import Sandbox
import Store
import Synchronization


/// Runs stored jobs asynchronously: takes submissions into the store's persistent queue,
/// serves it with a pool of workers that run each execution in the sandbox, keeps partial
/// output while it runs, enforces cancellation, renews leases, applies retention, recovers
/// after a crash and shuts down gracefully.
///
/// Nothing here blocks Swift's cooperative pool: the store works on its own queues and the
/// sandbox on its own threads.
///
/// Its metrics (`EngineMetrics`) follow every execution: the store it is given is served
/// through a `MeasuredStore`, which times each write and counts each transition.
public final class Engine: Sendable {
    /// The store, measured: writes through it (the API's too) are timed and counted.
    public let store: any ExecutionStore
    public let sandbox: Sandbox
    /// The policies new submissions use; `reloadPolicies()` replaces them as a whole.
    /// Executions keep the policy snapshot taken when they were submitted.
    public var policies: PolicySet { currentPolicies.withLock { $0 } }
    let currentPolicies: Mutex<PolicySet>
    /// The YAML snapshot of each policy in force, rendered once (a submission that tightens no
    /// limit snapshots its policy as it is; rendering it each time was ~4 % of the server's CPU
    /// per trivial execution). Emptied when the policies are reloaded.
    let renderedPolicies = Mutex<[String: (policy: Policy, yaml: String)]>([:])
    public let configuration: EngineConfiguration
    public let metrics: EngineMetrics

    struct State {
        var handles: [Int64: RunHandle] = [:]
        /// The output of the executions running here, as it is captured.
        var live: [Int64: LiveOutput] = [:]
        /// Cancellations asked for an execution this engine has claimed but not started yet.
        var cancelled: Set<Int64> = []
        /// Claims fail now (the database is unavailable): said once, until one works again.
        var claimsFailing = false
        var draining = false
        var interrupting = false
        var workers: [Task<Void, Never>] = []
        var background: [Task<Void, Never>] = []
        /// One per worker: yielding wakes it to look for work.
        var wakeUps: [AsyncStream<Void>.Continuation] = []
        /// Runs whose partial output met a full disk (warned once each).
        var diskFullWarned: Set<Int64> = []
    }
    let state = Mutex(State())
    /// Isolation this engine's sandbox runs without (`allow_weaker`), recorded on every execution.
    public var weakerIsolation: [String] { sandbox.configuration.weakenedIsolation.map(\.rawValue) }
    /// Policies parsed back from executions' snapshots (many executions share one).
    let snapshots = Mutex<[String: Policy]>([:])

    public init(store: any ExecutionStore, sandbox: Sandbox, policies: PolicySet,
                configuration: EngineConfiguration = EngineConfiguration(), metrics: EngineMetrics = EngineMetrics()) {
        self.store = MeasuredStore(base: store, metrics: metrics)
        self.metrics = metrics
        self.sandbox = sandbox
        self.currentPolicies = Mutex(policies)
        self.configuration = configuration
    }

    // MARK: Lifecycle

    /// Recovers from a previous crash (executions left RUNNING end as FAILED with verdict
    /// `interrupted`; their sandboxes were removed when the `Sandbox` started), sets the queue
    /// depth from the store, then starts the workers. Returns the executions it interrupted.
    @discardableResult
    public func start() async throws(EngineError) -> [Execution] {
        let interrupted: [Execution]
        do {
            interrupted = try await store.recoverAtStart(
                node: configuration.workerName,
                reason: "the server stopped while this execution ran; its sandbox was removed at restart", now: Date())
            try await store.registerNode(name: configuration.workerName, version: configuration.nodeVersion,
                                         workers: max(1, configuration.workers))
            metrics.queueDepth.set(try await store.pendingCount())
        } catch {
            throw Self.wrap(error)
        }
        metrics.workers.set(max(1, configuration.workers))
        for index in 0..<max(1, configuration.workers) {
            let (wakeUps, wakeUp) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            let worker = Task { [self] in await self.work(index: index, wakeUps: wakeUps) }
            state.withLock {
                $0.wakeUps.append(wakeUp)
                $0.workers.append(worker)
            }
        }
        await retryInterrupted(interrupted)
        // A periodic wake-up: leases that expired elsewhere, queue rules that now allow a run,
        // and queued retries as they become due (the store's not-before is the record).
        let ticker = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: await self.tickerPause(now: Date()))
                self.wakeWorkers()
            }
        }
        let retention = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: self.configuration.retentionInterval)
                if Task.isCancelled { break }
                await self.applyRetention()
            }
        }
        state.withLock { $0.background += [ticker, retention, nodeWatch(), storeEvents()] }
        if configuration.sendsWebhooks {
            let sender = Task { [self] in await self.runWebhooks() }
            state.withLock { $0.background.append(sender) }
        }
        if configuration.runsSchedules {
            let scheduler = Task { [self] in await self.runSchedules() }
            state.withLock { $0.background.append(scheduler) }
        }
        return interrupted
    }

    /// Stops taking work, lets running executions finish for up to `shutdownGrace`, then
    /// interrupts the rest (verdict `interrupted`), and returns when every worker has stopped.
    public func shutdown() async {
        state.withLock { $0.draining = true }
        wakeWorkers()
        let deadline = ContinuousClock.now + configuration.shutdownGrace
        while ContinuousClock.now < deadline, state.withLock({ !$0.handles.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let (handles, workers, background, wakeUps) = state.withLock { s in
            s.interrupting = true
            return (Array(s.handles.values), s.workers, s.background, s.wakeUps)
        }
        handles.forEach { $0.cancel() }
        wakeUps.forEach { $0.finish() }
        for worker in workers { await worker.value }
        background.forEach { $0.cancel() }
        for task in background { await task.value }
        do {
            try await store.stopNode(name: configuration.workerName)
        } catch {
            configuration.logger.warning("could not mark node \(configuration.workerName) stopped: \(error)")
        }
    }

    // MARK: Requests

    /// The policy's YAML as an execution keeps it: the cached rendering when the policy is the
    /// one in force unchanged, else rendered now (a run or job that tightened its limits).
    func snapshot(_ policy: Policy) -> String {
        if let cached = renderedPolicies.withLock({ $0[policy.name] }), cached.policy == policy { return cached.yaml }
        let yaml = policy.renderYAML()
        if policies[policy.name] == policy {
            renderedPolicies.withLock { $0[policy.name] = (policy, yaml) }
        }
        return yaml
    }

    /// Queues a run of a job: the script and the effective policy are snapshotted now, so later
    /// edits of the job or the policy do not change what this execution runs.
    public func submit(jobID: Int64, options: RunOptions = RunOptions()) async throws(EngineError) -> Execution {
        if state.withLock({ $0.draining }) { throw .shuttingDown }
        let job: Job
        do {
            guard let found = try await store.job(id: jobID) else { throw EngineError.jobNotFound(jobID) }
            job = found
        } catch {
            throw Self.wrap(error)
        }
        return try await submit(job: job, options: options)
    }

    /// Queues a run of `job` as the caller has just read it (the API checks the caller's quotas
    /// against the same row it snapshots: one read, one version of the job).
    public func submit(job: Job, options: RunOptions = RunOptions()) async throws(EngineError) -> Execution {
        if state.withLock({ $0.draining }) { throw .shuttingDown }
        var new = try newExecution(jobID: job.id, scriptType: job.scriptType, script: job.scriptContent, policyName: job.policy,
                                   jobLimits: job.limits, concurrency: job.concurrency, arguments: job.arguments,
                                   environment: job.environment, secretEnvironment: job.secretEnvironment, options: options)
        new.outputs = Self.union(job.outputs, options.outputs)
        new.callback = options.callback ?? job.callback
        let jobFiles: [InputFile]
        do { jobFiles = job.files.isEmpty ? [] : try await store.jobFiles(id: job.id) } catch { throw Self.wrap(error) }
        new.files = try checkedFiles(InputFile.merging(jobFiles, options.files))
        return try await enqueue(new)
    }

    /// Queues an ad-hoc run: the script comes with the request and no job is stored
    /// (`job_id` null). The same checks, snapshots, quotas and queue bound as a job's run; its
    /// tenant is `tenant` (the submitter's).
    public func submit(adHoc script: AdHocScript, options: RunOptions = RunOptions()) async throws(EngineError) -> Execution {
        if state.withLock({ $0.draining }) { throw .shuttingDown }
        var new = try newExecution(jobID: nil, scriptType: script.scriptType, script: script.content, policyName: script.policy,
                                   jobLimits: [], concurrency: .allow, arguments: [], environment: [:], secretEnvironment: [:],
                                   options: options)
        new.tenant = script.tenant
        if new.trigger == .api { new.trigger = .adHoc }
        new.files = try checkedFiles(options.files)
        new.outputs = Self.union([], options.outputs)
        new.callback = options.callback
        return try await enqueue(new)
    }

    /// The execution to enqueue: runtime known, script within `max_script_size`, the effective
    /// policy (each layer of limits only tighter), the environment allowed by it.
    func newExecution(jobID: Int64?, scriptType: ScriptType, script: String, policyName: String, jobLimits: [String],
                      concurrency: ConcurrencyRule, arguments: [String], environment: [String: String],
                      secretEnvironment: [String: String], options: RunOptions) throws(EngineError) -> NewExecution {
        guard configuration.runtimes[scriptType] != nil else {
            throw .unknownRuntime(scriptType.rawValue, known: configuration.runtimes.keys.map(\.rawValue).sorted())
        }
        let scriptBytes = script.utf8.count
        if scriptBytes > configuration.maxScriptBytes {
            throw .scriptTooLarge(bytes: scriptBytes, limit: configuration.maxScriptBytes)
        }
        let policy = try effectivePolicy(name: policyName, jobLimits: jobLimits, runLimits: options.limits)
        let environment = environment.merging(options.environment) { _, run in run }
        for name in environment.keys.sorted() where !policy.environment.allows(name) {
            throw .invalidPolicy("environment variable \(name) is not allowed by policy \(policy.name)")
        }
        return NewExecution(
            jobID: jobID, scriptType: scriptType, scriptSnapshot: script, policyName: policy.name,
            policySnapshot: snapshot(policy), concurrency: concurrency,
            arguments: options.arguments ?? arguments, environment: environment, stdin: options.stdin,
            priority: options.priority, createdAt: Date(), secretEnvironment: secretEnvironment,
            submittedBy: options.submittedBy, maxActive: options.maxActive, weakerIsolation: weakerIsolation,
            audit: options.audit)
            .triggered(by: options.trigger)
    }

    /// `a` then the patterns of `b` it lacks.
    static func union(_ a: [String], _ b: [String]) -> [String] {
        var seen = Set<String>(), out: [String] = []
        for pattern in a + b where seen.insert(pattern).inserted { out.append(pattern) }
        return out
    }

    /// An execution's input files (its job's and its run's merged) within the count and
    /// `max_files_bytes`.
    func checkedFiles(_ files: [InputFile]) throws(EngineError) -> [InputFile] {
        if files.count > EngineConfiguration.maxFiles {
            throw .invalidFiles("files: \(files.count) input files with the job's and the run's together; at most \(EngineConfiguration.maxFiles)")
        }
        let total = files.reduce(0) { $0 + $1.content.count }
        if total > configuration.maxFilesBytes {
            throw .invalidFiles("files: the input files total \(total) bytes with the job's and the run's together; at most "
                                + "\(configuration.maxFilesBytes) (max_files_bytes)")
        }
        return files
    }

    /// Stores a new execution (quotas, concurrency rule and queue bound checked in the same
    /// transaction) and wakes the workers.
    func enqueue(_ new: NewExecution) async throws(EngineError) -> Execution {
        do {
            let execution = try await store.enqueue(new, queueLimit: configuration.queueLimit)
            wakeWorkers()
            return execution
        } catch {
            throw Self.wrap(error)
        }
    }

    /// Cancels a PENDING execution at once, or a RUNNING one by killing its sandbox (it then
    /// ends as CANCELLED). Returns the execution as it is after the request.
    @discardableResult
    public func cancel(executionID: Int64) async throws(EngineError) -> Execution {
        do {
            let execution = try await store.cancel(executionID: executionID, now: Date())
            if execution.status == .running {
                let handle = state.withLock { s -> RunHandle? in
                    if let handle = s.handles[executionID] { return handle }
                    s.cancelled.insert(executionID)  // claimed, its sandbox not started yet
                    return nil
                }
                handle?.cancel()
            }
            return execution
        } catch {
            throw Self.wrap(error)
        }
    }

    /// Loads the policies folder again and, when every file of it is valid, puts the new set in
    /// force for later submissions. A folder with any invalid file is refused with the errors
    /// of all of them, and the policies in force stay as they were. Executions already
    /// submitted keep the policy they were given. Returns the set now in force.
    @discardableResult
    public func reloadPolicies() throws(EngineError) -> PolicySet {
        let directory = policies.directory
        let loaded: PolicySet
        do {
            loaded = try PolicySet.load(directory: directory)
        } catch {
            throw .invalidPolicy("reloading \(directory) refused; the previous policies stay in force: \(error.description)")
        }
        guard loaded["default"] != nil else {
            throw .invalidPolicy("reloading \(directory) refused; the previous policies stay in force: it has no default.yaml, "
                                 + "which jobs without a policy need")
        }
        currentPolicies.withLock { $0 = loaded }
        renderedPolicies.withLock { $0 = [:] }
        return loaded
    }

    /// The output of an execution running in this engine as it is captured (nil when it is
    /// not running here: pending, finished, or run by another process).
    public func liveOutput(executionID: Int64) -> LiveOutput? {
        state.withLock { $0.live[executionID] }
    }

    /// The policy a run gets: the named one, with limits applied (each only tighter).
    public func effectivePolicy(name: String, limits: [String]) throws(EngineError) -> Policy {
        try effectivePolicy(name: name, jobLimits: limits, runLimits: [])
    }

    /// The policy `name` with the job's limits applied, then the run's over those: each layer
    /// may only tighten what is below it (a run may ask 64MiB of a job that sets 128MiB, not
    /// 256MiB), and a limit given twice within one layer is refused.
    public func effectivePolicy(name: String, jobLimits: [String], runLimits: [String]) throws(EngineError) -> Policy {
        do {
            let base = try self.policies.policy(named: name)
            let job = try base.applying(LimitOverrides(parsing: jobLimits))
            return try runLimits.isEmpty ? job : job.applying(LimitOverrides(parsing: runLimits))
        } catch {
            throw .invalidPolicy(error.description)
        }
    }

    // MARK: Helpers

    /// What every log line about an execution carries.
    static func metadata(_ execution: Execution) -> Logger.Metadata {
        ["execution_id": "\(execution.id)", "job_id": "\(execution.jobID.map(String.init) ?? "none")"]
    }

    static func wrap(_ error: any Error) -> EngineError {
        if let e = error as? EngineError { return e }
        if let e = error as? StoreError { return .store(e) }
        return .store(.unavailable("\(error)"))
    }
}
