import Domain
import Foundation
import Logging
import Sandbox
import Store
import Synchronization

/// Options of one run of a job.
public struct RunOptions: Sendable, Equatable {
    /// Arguments for the script; nil: the job's default arguments.
    public var arguments: [String]?
    /// Variables added to the job's (each allowed by the policy).
    public var environment: [String: String]
    public var stdin: Data?
    /// Tighter limits for this run (`memory=64MiB`), on top of the job's.
    public var limits: [String]
    public var priority: Int
    /// The token submitting the run, and its quota of executions pending or running at once.
    public var submittedBy: Int64?
    public var maxActive: Int?

    public init(arguments: [String]? = nil, environment: [String: String] = [:], stdin: Data? = nil,
                limits: [String] = [], priority: Int = 0, submittedBy: Int64? = nil, maxActive: Int? = nil) {
        self.arguments = arguments
        self.environment = environment
        self.stdin = stdin
        self.limits = limits
        self.priority = priority
        self.submittedBy = submittedBy
        self.maxActive = maxActive
    }
}

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
    private let currentPolicies: Mutex<PolicySet>
    public let configuration: EngineConfiguration
    public let metrics: EngineMetrics

    private struct State {
        var handles: [Int64: RunHandle] = [:]
        /// The output of the executions running here, as it is captured.
        var live: [Int64: LiveOutput] = [:]
        /// Cancellations asked for an execution this engine has claimed but not started yet.
        var cancelled: Set<Int64> = []
        var draining = false
        var interrupting = false
        var workers: [Task<Void, Never>] = []
        var background: [Task<Void, Never>] = []
        var bells: [AsyncStream<Void>.Continuation] = []
        /// Runs whose partial output met a full disk (warned once each).
        var diskFullWarned: Set<Int64> = []
    }
    private let state = Mutex(State())
    /// Isolation this engine's sandbox runs without (`allow_weaker`), recorded on every execution.
    public var weakerIsolation: [String] { sandbox.configuration.weakenedIsolation.map(\.rawValue) }
    /// Policies parsed back from executions' snapshots (many executions share one).
    private let snapshots = Mutex<[String: Policy]>([:])

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
            interrupted = try await store.interruptRunning(
                worker: nil, reason: "the server stopped while this execution ran; its sandbox was removed at restart",
                now: Date())
            metrics.queueDepth.set(try await store.pendingCount())
        } catch {
            throw Self.wrap(error)
        }
        metrics.workers.set(max(1, configuration.workers))
        for index in 0..<max(1, configuration.workers) {
            let (stream, bell) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            let worker = Task { [self] in await self.work(index: index, bell: stream) }
            state.withLock {
                $0.bells.append(bell)
                $0.workers.append(worker)
            }
        }
        // A periodic ring: leases that expired elsewhere, and queue rules that now allow a run.
        let ticker = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                self.ring()
            }
        }
        let retention = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: self.configuration.retentionInterval)
                if Task.isCancelled { break }
                await self.applyRetention()
            }
        }
        state.withLock { $0.background += [ticker, retention] }
        return interrupted
    }

    /// Stops taking work, lets running executions finish for up to `shutdownGrace`, then
    /// interrupts the rest (verdict `interrupted`), and returns when every worker has stopped.
    public func shutdown() async {
        state.withLock { $0.draining = true }
        ring()
        let deadline = ContinuousClock.now + configuration.shutdownGrace
        while ContinuousClock.now < deadline, state.withLock({ !$0.handles.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let (handles, workers, background, bells) = state.withLock { s in
            s.interrupting = true
            return (Array(s.handles.values), s.workers, s.background, s.bells)
        }
        handles.forEach { $0.cancel() }
        bells.forEach { $0.finish() }
        for worker in workers { await worker.value }
        background.forEach { $0.cancel() }
        for task in background { await task.value }
    }

    // MARK: Requests

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
        guard configuration.runtimes[job.scriptType] != nil else {
            throw .unknownRuntime(job.scriptType.rawValue, known: configuration.runtimes.keys.map(\.rawValue).sorted())
        }
        let scriptBytes = job.scriptContent.utf8.count
        if scriptBytes > configuration.maxScriptBytes {
            throw .scriptTooLarge(bytes: scriptBytes, limit: configuration.maxScriptBytes)
        }
        let policy = try effectivePolicy(name: job.policy, jobLimits: job.limits, runLimits: options.limits)
        let environment = job.environment.merging(options.environment) { _, run in run }
        for name in environment.keys.sorted() where !policy.environment.allows(name) {
            throw .invalidPolicy("environment variable \(name) is not allowed by policy \(policy.name)")
        }
        let new = NewExecution(
            jobID: job.id, scriptType: job.scriptType, scriptSnapshot: job.scriptContent, policyName: policy.name,
            policySnapshot: policy.renderYAML(), concurrency: job.concurrency,
            arguments: options.arguments ?? job.arguments, environment: environment, stdin: options.stdin,
            priority: options.priority, createdAt: Date(), secretEnvironment: job.secretEnvironment,
            submittedBy: options.submittedBy, maxActive: options.maxActive, weakerIsolation: weakerIsolation)
        do {
            let execution = try await store.enqueue(new, queueLimit: configuration.queueLimit)
            ring()
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

    // MARK: Workers

    private func ring() {
        for bell in state.withLock({ $0.bells }) { bell.yield() }
    }

    private func work(index: Int, bell: AsyncStream<Void>) async {
        var rings = bell.makeAsyncIterator()
        while !state.withLock({ $0.draining }) {
            let claimed: Execution?
            do {
                claimed = try await store.claimNext(worker: configuration.workerName,
                                                    leaseUntil: Date() + configuration.leaseDuration.seconds, now: Date())
            } catch {
                configuration.logger.warning("claiming failed: \(error)", metadata: ["worker": "\(index)"])
                claimed = nil
            }
            if let claimed {
                metrics.workersBusy.increment()
                await run(claimed)
                metrics.workersBusy.decrement()
            } else if await rings.next() == nil {
                return
            }
        }
    }

    /// Runs one claimed execution to its end and stores the outcome.
    private func run(_ execution: Execution) async {
        let (bell, ringing) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let live = LiveOutput(executionID: execution.id, caps: outputCaps(of: execution),
                              flushBytes: configuration.outputFlushBytes, onBacklog: { ringing.yield() })
        state.withLock { $0.live[execution.id] = live }
        defer {
            state.withLock { s in
                _ = s.live.removeValue(forKey: execution.id)
                s.diskFullWarned.remove(execution.id)
            }
            live.end()
        }
        var outcome = await outcome(of: execution, live: live, flushes: bell, ringing: ringing)
        // What the store does not have yet goes with the outcome.
        if let rest = live.unstored() {
            (outcome.stdout, outcome.stderr) = (rest.stdout, rest.stderr)
            (outcome.stdoutOffset, outcome.stderrOffset) = (rest.from.stdout, rest.from.stderr)
        } else {
            let captured = live.captured
            (outcome.stdoutOffset, outcome.stderrOffset) = (captured.stdout, captured.stderr)
        }
        guard let stored = await store(outcome, of: execution) else { return }
        var details = Self.metadata(execution)
        details["status"] = "\(stored.status.rawValue)"
        details["verdict"] = "\(stored.verdict.rawValue)"
        if let code = stored.exitCode { details["exit_code"] = "\(code)" }
        details["wall_ms"] = "\(stored.usage.wallMs)"
        configuration.logger.info("execution finished", metadata: details)
    }

    /// Stores the end of an execution. When the database's disk is full: with its complete
    /// output if that fits, else with the output stored while it ran (the reason says so); when
    /// not even that fits, tries again every second, keeping the lease, until it fits or the
    /// engine stops (the next start then ends the execution as interrupted). Returns what was
    /// stored, or nil.
    private func store(_ outcome: ExecutionOutcome, of execution: Execution) async -> ExecutionOutcome? {
        let about = Self.metadata(execution)
        var outcome = outcome
        outcome.weakerIsolation = weakerIsolation
        var lean = outcome
        lean.keepsStoredOutput = true
        let note = "the database's disk was full when this execution ended: only the output stored while it ran was kept"
        lean.reason = [outcome.reason, note].compactMap { $0 }.joined(separator: "; ")
        var warned = false
        while true {
            for attempt in [outcome, lean] {
                do {
                    _ = try await store.finish(executionID: execution.id, attempt)
                    return attempt
                } catch StoreError.diskFull {
                    continue
                } catch {
                    configuration.logger.warning("storing the end of the execution failed: \(error)", metadata: about)
                    return nil
                }
            }
            if !warned {
                warned = true
                configuration.logger.warning(
                    "the database's disk is full: the end of this execution is kept in memory and stored once there is room",
                    metadata: about)
            }
            if state.withLock({ $0.interrupting }) {
                configuration.logger.warning(
                    "stopping with the end of this execution unstored (the disk is full); the next start ends it as interrupted",
                    metadata: about)
                return nil
            }
            try? await store.renewLease(executionID: execution.id, worker: configuration.workerName,
                                        until: Date() + configuration.leaseDuration.seconds)
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// The capture caps of an execution's policy snapshot (the defaults' when it cannot be read).
    private func outputCaps(of execution: Execution) -> OutputPosition {
        let limits = (try? policy(of: execution))?.limits ?? Limits()
        return OutputPosition(stdout: Int64(clamping: limits.stdoutBytes), stderr: Int64(clamping: limits.stderrBytes))
    }

    /// The policy of an execution's snapshot, parsed once for all executions that share it.
    private func policy(of execution: Execution) throws -> Policy {
        if let cached = snapshots.withLock({ $0[execution.policySnapshot] }) { return cached }
        let policy = try PolicyLoader.load(yaml: execution.policySnapshot, name: execution.policyName,
                                           file: "policy snapshot of execution \(execution.id)")
        snapshots.withLock { cache in
            if cache.count >= 64 { cache.removeAll() }
            cache[execution.policySnapshot] = policy
        }
        return policy
    }

    /// Runs the execution in the sandbox, its output captured into `live` and stored from there
    /// in batches (every `outputFlushInterval`, or sooner when `outputFlushBytes` wait); the
    /// outcome's output is left empty: what is not stored yet is still in `live`.
    private func outcome(of execution: Execution, live: LiveOutput, flushes: AsyncStream<Void>,
                         ringing: AsyncStream<Void>.Continuation) async -> ExecutionOutcome {
        func setupFailure(_ reason: String) -> ExecutionOutcome {
            ExecutionOutcome(verdict: .setupFailed, reason: reason, finishedAt: Date())
        }
        let policy: Policy
        do { policy = try self.policy(of: execution) } catch {
            return setupFailure("\(error)")
        }
        guard let runtime = configuration.runtimes[execution.scriptType] else {
            return setupFailure("no runtime for script type \"\(execution.scriptType.rawValue)\"")
        }
        var environment = execution.environment
        if !execution.secretEnvironment.isEmpty {
            guard let open = configuration.openSecret else {
                return setupFailure("the job has secret environment variables and this server has no secrets key")
            }
            for (name, sealed) in execution.secretEnvironment {
                do {
                    environment[name] = try open(sealed)
                } catch {
                    return setupFailure("secret environment variable \(name): \(error)")
                }
            }
        }
        // Every chunk goes to `live` (and from there to the store): the sandbox keeps no copy.
        let request = RunRequest(
            policy: policy, command: runtime.command + [runtime.scriptPath] + execution.arguments,
            stdin: execution.stdin.map { Array($0) },
            files: [SandboxFile(path: runtime.scriptPath, contents: Array(execution.scriptSnapshot.utf8))],
            environment: environment, onOutput: { live.add($0) }, keepOutput: false,
            pauseOutput: { [backlog = configuration.outputBacklogBytes] in live.holds(moreThan: backlog) })
        let handle: RunHandle
        do { handle = try sandbox.start(request) } catch {
            return setupFailure("\(error)")
        }
        metrics.running.increment()
        // A cancellation that came before the handle existed: asked of this engine, or stored
        // (by the API of another process) before the claim.
        let cancelNow = state.withLock { s -> Bool in
            s.handles[execution.id] = handle
            return s.interrupting || s.cancelled.remove(execution.id) != nil
        }
        if cancelNow || execution.cancelRequested { handle.cancel() }

        // While it runs: partial output to the store (one flush at a time, when rung), cancellations
        // from elsewhere, the lease renewed.
        let flusher = Task { [self] in
            for await _ in flushes { await flush(live, execution: execution) }
        }
        let keeper = Task { [self] in
            var sinceRenewal = Duration.zero
            while !Task.isCancelled {
                try? await Task.sleep(for: configuration.outputFlushInterval)
                // Cancelled: the run is over and `finish` stores the rest of its output.
                if Task.isCancelled { break }
                ringing.yield()
                // A cancellation stored by another process (the API of a cluster).
                if (try? await store.isCancelRequested(executionID: execution.id)) == true { handle.cancel() }
                sinceRenewal += configuration.outputFlushInterval
                if sinceRenewal >= configuration.leaseDuration / 3 {
                    sinceRenewal = .zero
                    try? await store.renewLease(executionID: execution.id, worker: configuration.workerName,
                                                until: Date() + configuration.leaseDuration.seconds)
                }
            }
        }
        let result = await handle.result()
        metrics.running.decrement()
        metrics.record(result)
        keeper.cancel()
        await keeper.value
        ringing.finish()
        await flusher.value
        let interrupted = state.withLock { s -> Bool in
            s.handles[execution.id] = nil
            s.cancelled.remove(execution.id)
            return s.interrupting
        }
        return ExecutionOutcome(result, interrupted: interrupted && result.verdict == .cancelled)
    }

    /// Stores what `live` holds that the store does not have yet, in batches of at most twice
    /// `outputFlushBytes` (short write transactions); dropped from `live` only once stored (a
    /// failed write is tried again with the next flush, or by `finish`).
    private func flush(_ live: LiveOutput, execution: Execution) async {
        while let pending = live.unstored(limit: 2 * configuration.outputFlushBytes) {
            let end = OutputPosition(stdout: pending.from.stdout + Int64(pending.stdout.count),
                                     stderr: pending.from.stderr + Int64(pending.stderr.count))
            do {
                try await store.appendOutput(executionID: execution.id, stdout: pending.stdout, stdoutOffset: pending.from.stdout,
                                             stderr: pending.stderr, stderrOffset: pending.from.stderr,
                                             stdoutBytes: end.stdout, stderrBytes: end.stderr)
                live.stored(upTo: pending.upTo)
            } catch StoreError.diskFull {
                // Partial output waits in `live` while the disk is full (past outputBacklogBytes
                // the program's output pauses); the end of the run stores what fits (`store(_:of:)`).
                let first = state.withLock { $0.diskFullWarned.insert(execution.id).inserted }
                if first {
                    configuration.logger.warning("the database's disk is full: partial output is not stored until there is room",
                                                 metadata: Self.metadata(execution))
                }
                return
            } catch {
                configuration.logger.warning("storing partial output failed: \(error)", metadata: Self.metadata(execution))
                return
            }
        }
    }

    /// What every log line about an execution carries.
    static func metadata(_ execution: Execution) -> Logger.Metadata {
        ["execution_id": "\(execution.id)", "job_id": "\(execution.jobID)"]
    }

    private func applyRetention() async {
        guard configuration.keepPerJob != nil || configuration.maxAge != nil else { return }
        let olderThan = configuration.maxAge.map { Date() - $0.seconds }
        do { _ = try await store.prune(keepPerJob: configuration.keepPerJob, olderThan: olderThan) } catch {
            configuration.logger.warning("retention failed: \(error)")
        }
    }

    private static func wrap(_ error: any Error) -> EngineError {
        if let e = error as? EngineError { return e }
        if let e = error as? StoreError { return .store(e) }
        return .store(.unavailable("\(error)"))
    }
}

extension ExecutionOutcome {
    /// The store's record of a sandbox result (its output, if the sandbox kept any).
    init(_ result: RunResult, interrupted: Bool) {
        let verdict: ExecutionVerdict = interrupted ? .interrupted : (ExecutionVerdict(rawValue: result.verdict.rawValue) ?? .setupFailed)
        self.init(
            verdict: verdict, exitCode: result.exitCode, signal: result.signal,
            reason: interrupted ? "the server shut down while this execution ran" : result.setupFailure?.description,
            stdout: Data(result.stdout), stderr: Data(result.stderr),
            stdoutBytes: Int64(result.stdoutBytes), stderrBytes: Int64(result.stderrBytes),
            stdoutTruncated: result.stdoutTruncated, stderrTruncated: result.stderrTruncated,
            usage: ResourceUsage(wallMs: result.wallMs, cpuMs: result.cpuMs, memoryPeakBytes: result.memoryPeakBytes.map { Int64($0) }),
            finishedAt: Date())
    }
}

extension Duration {
    /// As seconds, for Date arithmetic.
    var seconds: TimeInterval {
        let c = components
        return TimeInterval(c.seconds) + TimeInterval(c.attoseconds) / 1e18
    }
}
