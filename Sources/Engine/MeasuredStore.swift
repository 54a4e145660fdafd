import Domain
import Foundation
import Store

/// A store that measures every write (`confine_store_write_duration_seconds{operation}`) and
/// counts the transitions of executions as it makes them: an enqueued execution adds one to the
/// queue depth, a claim starts one (and takes it off the queue unless it was a take-over), and
/// each final status reached is counted by status and verdict. Reads pass straight through.
///
/// The engine serves its store through this, and the API reaches the store through the
/// engine, so every write of the process is seen once.
struct MeasuredStore: ExecutionStore {
    let base: any ExecutionStore
    let metrics: EngineMetrics

    // MARK: Jobs

    func createJob(_ job: NewJob) async throws -> Job {
        try await metrics.timed(.createJob) { try await base.createJob(job) }
    }

    func job(id: Int64) async throws -> Job? { try await base.job(id: id) }

    func job(named name: String) async throws -> Job? { try await base.job(named: name) }

    func jobs(named name: String) async throws -> [Job] { try await base.jobs(named: name) }

    func jobs(scriptType: ScriptType?, tenant: String?, afterID: Int64?, limit: Int) async throws -> [Job] {
        try await base.jobs(scriptType: scriptType, tenant: tenant, afterID: afterID, limit: limit)
    }

    func jobFiles(id: Int64) async throws -> [InputFile] { try await base.jobFiles(id: id) }
    func sealedValueSample() async throws -> String? { try await base.sealedValueSample() }
    func executionFiles(id: Int64) async throws -> [InputFile] { try await base.executionFiles(id: id) }
    func artifacts(executionID: Int64) async throws -> (execution: Execution, files: [Artifact], skipped: [SkippedArtifact])? {
        try await base.artifacts(executionID: executionID)
    }
    func artifact(executionID: Int64, path: String) async throws -> (execution: Execution, artifact: Artifact, content: Data)? {
        try await base.artifact(executionID: executionID, path: path)
    }
    func jobIDs(scriptType: ScriptType?, tenant: String?, afterID: Int64?, limit: Int) async throws -> [Int64] {
        try await base.jobIDs(scriptType: scriptType, tenant: tenant, afterID: afterID, limit: limit)
    }

    func jobs(scriptType: ScriptType?, tenant: String?) async throws -> [Job] {
        try await base.jobs(scriptType: scriptType, tenant: tenant)
    }

    func updateJob(id: Int64, _ patch: JobPatch) async throws -> Job {
        try await metrics.timed(.updateJob) { try await base.updateJob(id: id, patch) }
    }

    func deleteJob(id: Int64) async throws {
        try await metrics.timed(.deleteJob) { try await base.deleteJob(id: id) }
    }

    func finishedExecutionsVersion() -> String? { base.finishedExecutionsVersion() }

    // MARK: Executions

    func enqueue(_ execution: NewExecution, queueLimit: Int) async throws -> Execution {
        let enqueued = try await metrics.timed(.enqueue) { try await base.enqueue(execution, queueLimit: queueLimit) }
        metrics.queueDepth.increment()
        return enqueued
    }

    func claimNext(worker: String, leaseUntil: Date, now: Date) async throws -> Execution? {
        let claimed = try await metrics.timed(.claim) { try await base.claimNext(worker: worker, leaseUntil: leaseUntil, now: now) }
        counted(claim: claimed)
        return claimed
    }

    private func counted(claim claimed: Execution?) {
        guard let claimed else { return }
        // A take-over was RUNNING already; only a first claim leaves the queue.
        if claimed.takeovers == 0 { metrics.queueDepth.decrement() }
        metrics.started.increment()
    }

    func renewLease(executionID: Int64, worker: String, until: Date) async throws {
        try await metrics.timed(.renewLease) { try await base.renewLease(executionID: executionID, worker: worker, until: until) }
    }

    func appendOutput(executionID: Int64, stdout: Data, stdoutOffset: Int64, stderr: Data, stderrOffset: Int64,
                      stdoutBytes: Int64, stderrBytes: Int64) async throws {
        try await metrics.timed(.appendOutput) {
            try await base.appendOutput(executionID: executionID, stdout: stdout, stdoutOffset: stdoutOffset, stderr: stderr,
                                        stderrOffset: stderrOffset, stdoutBytes: stdoutBytes, stderrBytes: stderrBytes)
        }
    }

    func finish(executionID: Int64, _ outcome: ExecutionOutcome) async throws -> Execution {
        let finished = try await metrics.timed(.finish) { try await base.finish(executionID: executionID, outcome) }
        counted(finish: finished, outcome)
        return finished
    }

    func finish(executionID: Int64, _ outcome: ExecutionOutcome,
                thenClaim claim: ClaimRequest?) async throws -> (finished: Execution, next: Execution?) {
        let both = try await metrics.timed(.finish) { try await base.finish(executionID: executionID, outcome, thenClaim: claim) }
        counted(finish: both.finished, outcome)
        counted(claim: both.next)
        return both
    }

    private func counted(finish finished: Execution, _ outcome: ExecutionOutcome) {
        metrics.finished(finished)
        if outcome.retry != nil { metrics.queueDepth.increment() }
    }

    func cancel(executionID: Int64, now: Date) async throws -> Execution {
        let execution = try await metrics.timed(.cancel) { try await base.cancel(executionID: executionID, now: now) }
        // CANCELLED at once means it was PENDING (a RUNNING one only records the request, and a
        // final one is refused).
        if execution.status == .cancelled {
            metrics.queueDepth.decrement()
            metrics.finished(execution)
        }
        return execution
    }

    func isCancelRequested(executionID: Int64) async throws -> Bool {
        try await base.isCancelRequested(executionID: executionID)
    }

    func interruptRunning(worker: String?, reason: String, now: Date) async throws -> [Execution] {
        let interrupted = try await metrics.timed(.interruptRunning) {
            try await base.interruptRunning(worker: worker, reason: reason, now: now)
        }
        interrupted.forEach(metrics.finished)
        return interrupted
    }

    func execution(id: Int64) async throws -> Execution? { try await base.execution(id: id) }

    func output(executionID: Int64, stdoutFrom: Int64, stderrFrom: Int64, limit: Int) async throws -> OutputSlice? {
        try await base.output(executionID: executionID, stdoutFrom: stdoutFrom, stderrFrom: stderrFrom, limit: limit)
    }

    func executions(_ query: ExecutionQuery) async throws -> ExecutionPage { try await base.executions(query) }

    func pendingCount() async throws -> Int { try await base.pendingCount() }

    func refusalOfNewData() async -> StoreError? { await base.refusalOfNewData() }

    func prune(keepPerJob: Int?, olderThan: Date?) async throws -> Int {
        try await metrics.timed(.prune) { try await base.prune(keepPerJob: keepPerJob, olderThan: olderThan) }
    }

    // MARK: Nodes (passed through)

    func registerNode(name: String, version: String, workers: Int) async throws {
        try await base.registerNode(name: name, version: version, workers: workers)
    }
    func heartbeat(node: String) async throws { try await base.heartbeat(node: node) }
    func stopNode(name: String) async throws { try await base.stopNode(name: name) }
    func nodes(timeout: Duration) async throws -> [NodeRecord] { try await base.nodes(timeout: timeout) }
    func recoverAtStart(node: String, reason: String, now: Date) async throws -> [Execution] {
        let interrupted = try await metrics.timed(.interruptRunning) { try await base.recoverAtStart(node: node, reason: reason, now: now) }
        for execution in interrupted { metrics.finished(execution) }
        return interrupted
    }
    /// Other nodes' executions: not counted by this node's gauges (nor timed: it runs with
    /// every heartbeat and changes nothing while no node is dead).
    func interruptDeadNodes(timeout: Duration, reason: String) async throws -> [Execution] {
        try await base.interruptDeadNodes(timeout: timeout, reason: reason)
    }
    func events() -> AsyncStream<StoreEvent> { base.events() }

    // MARK: Retries

    func enqueueRetry(of executionID: Int64, _ retry: RetryRequest) async throws -> Execution {
        let queued = try await metrics.timed(.enqueue) { try await base.enqueueRetry(of: executionID, retry) }
        metrics.queueDepth.increment()
        return queued
    }

    func nextNotBefore(after now: Date) async throws -> Date? { try await base.nextNotBefore(after: now) }
}
