import Domain
import Foundation
import Sandbox
import Store

// One execution in the sandbox: its policy and secrets resolved, its output captured into
// `LiveOutput` and stored in batches while it runs, cancellations and the lease watched.

extension Engine {
    /// Runs the execution in the sandbox, its output captured into `live` and stored from there
    /// in batches (every `outputFlushInterval`, or sooner when `outputFlushBytes` wait); the
    /// outcome's output is left empty: what is not stored yet is still in `live`.
    func runInSandbox(_ execution: Execution, live: LiveOutput, flushRequests: AsyncStream<Void>,
                      requestFlush: AsyncStream<Void>.Continuation) async -> ExecutionOutcome {
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
        let inputFiles: [InputFile]
        do { inputFiles = try await store.executionFiles(id: execution.id) } catch {
            return setupFailure("reading the input files: \(error)")
        }
        // Every chunk goes to `live` (and from there to the store): the sandbox keeps no copy.
        var request = RunRequest(
            policy: policy, command: runtime.command + [runtime.scriptPath] + execution.arguments,
            stdin: execution.stdin.map { Array($0) },
            files: [SandboxFile(path: runtime.scriptPath, contents: Array(execution.scriptSnapshot.utf8))],
            environment: environment, onOutput: { live.add($0) }, keepOutput: false,
            pauseOutput: { [backlog = configuration.outputBacklogBytes] in live.holds(moreThan: backlog) })
        if !execution.outputs.isEmpty {
            request.outputs = OutputCollection(patterns: execution.outputs, maxBytes: configuration.maxArtifactBytes)
        }
        request.workingFiles = inputFiles.map { SandboxFile(path: $0.path, contents: Array($0.content), executable: $0.executable) }
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

        // While it runs: partial output to the store (one flush at a time, when requested), and
        // the run watched (cancellations from elsewhere, the lease renewed).
        let outputWriter = Task { [self] in
            for await _ in flushRequests { await storePartialOutput(live, execution: execution) }
        }
        let runWatch = watchRun(execution, handle: handle, requestFlush: requestFlush)
        let result = await handle.result()
        metrics.running.decrement()
        metrics.record(result)
        metrics.recordDenied(result, policy: execution.policyName)
        runWatch.cancel()
        await runWatch.value
        requestFlush.finish()
        await outputWriter.value
        let interrupted = state.withLock { s -> Bool in
            s.handles[execution.id] = nil
            s.cancelled.remove(execution.id)
            return s.interrupting
        }
        return ExecutionOutcome(result, interrupted: interrupted && result.verdict == .cancelled)
    }

    /// Every `outputFlushInterval` while a run goes on: asks for a flush of its output, cancels
    /// it when a cancellation was stored by another process (the API of a cluster), and renews
    /// its lease every third of `leaseDuration`. Ends when cancelled (the run is over).
    func watchRun(_ execution: Execution, handle: RunHandle, requestFlush: AsyncStream<Void>.Continuation) -> Task<Void, Never> {
        Task { [self] in
            var sinceRenewal = Duration.zero
            while !Task.isCancelled {
                try? await Task.sleep(for: configuration.outputFlushInterval)
                // Cancelled: the run is over and `finish` stores the rest of its output.
                if Task.isCancelled { break }
                requestFlush.yield()
                if (try? await store.isCancelRequested(executionID: execution.id)) == true { handle.cancel() }
                sinceRenewal += configuration.outputFlushInterval
                if sinceRenewal >= configuration.leaseDuration / 3 {
                    sinceRenewal = .zero
                    try? await store.renewLease(executionID: execution.id, worker: configuration.workerName,
                                                until: Date() + configuration.leaseDuration.seconds)
                }
            }
        }
    }

    /// Stores what `live` holds that the store does not have yet, in batches of at most twice
    /// `outputFlushBytes` (short write transactions); dropped from `live` only once stored (a
    /// failed write is tried again with the next flush, or by `finish`).
    func storePartialOutput(_ live: LiveOutput, execution: Execution) async {
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
                // the program's output pauses); the end of the run stores what fits (`storeEnd(_:of:)`).
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
}
