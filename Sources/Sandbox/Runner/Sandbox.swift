import CSandbox
import Foundation
import Glibc
import Synchronization

/// Runs programs in isolated processes: fresh namespaces, a read-only root built per run,
/// cgroup and rlimit limits, no capabilities, a seccomp filter and a wall-clock deadline.
///
/// Each run is supervised on a dedicated thread of its own (never on Swift's cooperative
/// pool), and nothing of it — process, mount, cgroup, file — outlives it.
public final class Sandbox: Sendable {
    public let configuration: SandboxConfiguration
    /// The cgroup hierarchy runs are placed in; nil only with `cgroups: .disabled`.
    public let cgroups: (any CgroupBackend)?
    private let sequence = Atomic<Int>(0)

    public init(configuration: SandboxConfiguration = SandboxConfiguration()) throws(SandboxError) {
        self.configuration = configuration
        // A program that closes its stdin early must not kill the server with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        switch configuration.cgroups {
        case .required:
            do { cgroups = try CgroupDetection.detect(parent: configuration.cgroupParent) } catch {
                throw .cgroup(error)
            }
        case .disabled:
            cgroups = nil
        }
    }

    /// Runs one program to the end and reports what happened. Cancelling the calling task
    /// kills the run (verdict `cancelled`).
    public func run(_ request: RunRequest) async throws(SandboxError) -> RunResult {
        let handle = try start(request)
        return await withTaskCancellationHandler {
            await handle.result()
        } onCancel: {
            handle.cancel()
        }
    }

    /// Starts one run and returns at once; the handle gives its result and can cancel it.
    public func start(_ request: RunRequest) throws(SandboxError) -> RunHandle {
        let prepared = try prepare(request)
        return launch(RunSupervisor.Job(request: prepared.request, policy: prepared.policy,
                                        seccomp: prepared.seccomp, bare: false))
    }

    /// Runs `command` with no isolation at all (plain fork + exec, same pipes and supervision):
    /// the baseline that benchmarks compare full isolation against.
    public func runBare(command: [String], policy: Policy) async -> RunResult {
        let request = RunRequest(policy: policy, command: command)
        return await launch(RunSupervisor.Job(request: request, policy: policy, seccomp: nil, bare: true)).result()
    }

    private func launch(_ job: RunSupervisor.Job) -> RunHandle {
        let handle = RunHandle()
        let name = "\(getpid())-\(sequence.add(1, ordering: .relaxed).newValue)"
        let supervisor = RunSupervisor(sandbox: self, job: job, name: name, handle: handle)
        let thread = Thread { supervisor.run() }
        thread.name = "confine-run-\(name)"
        thread.stackSize = 1 << 20
        thread.start()
        return handle
    }

    /// Validates a request against its policy and compiles what can be compiled once.
    private func prepare(_ request: RunRequest) throws(SandboxError) -> (request: RunRequest, policy: Policy, seccomp: SeccompProgram) {
        guard let program = request.command.first, !program.isEmpty else {
            throw .invalidRequest("run: no program given")
        }
        let policy: Policy
        do { policy = try request.policy.applying(request.overrides) } catch {
            throw .invalidRequest("\(error)")
        }
        for name in request.environment.keys.sorted() where !policy.environment.allows(name) {
            let allowed = policy.environment.allow.isEmpty ? "none" : policy.environment.allow.joined(separator: ", ")
            throw .invalidRequest("run: environment variable \(name) is not allowed by policy \(policy.name) (allowed: \(allowed))")
        }
        for file in request.files where !file.path.hasPrefix("/") || file.path.split(separator: "/").contains("..") {
            throw .invalidRequest("run: file path \(file.path) must be absolute, without '..'")
        }
        do {
            return (request, policy, try SeccompProgram.compile(policy.seccomp))
        } catch {
            throw .seccomp(error)
        }
    }
}

/// A run in progress: its result when it ends, and a way to cancel it.
public final class RunHandle: Sendable {
    private enum State {
        case running([CheckedContinuation<RunResult, Never>])
        case finished(RunResult)
    }
    private let state = Mutex<State>(.running([]))
    /// Written to wake the supervisor for cancellation.
    let cancelFD: Int32

    init() {
        cancelFD = cs_eventfd()
    }

    deinit { close(cancelFD) }

    /// Kills the run; its verdict becomes `cancelled` unless it had already ended.
    public func cancel() {
        var one: UInt64 = 1
        _ = write(cancelFD, &one, 8)
    }

    /// The result, once the run has ended and everything of it is gone.
    public func result() async -> RunResult {
        await withCheckedContinuation { continuation in
            let finished: RunResult? = state.withLock { state in
                switch state {
                case .finished(let result): return result
                case .running(var waiters):
                    waiters.append(continuation)
                    state = .running(waiters)
                    return nil
                }
            }
            if let finished { continuation.resume(returning: finished) }
        }
    }

    func finish(_ result: RunResult) {
        let waiters: [CheckedContinuation<RunResult, Never>] = state.withLock { state in
            guard case .running(let waiters) = state else { return [] }
            state = .finished(result)
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: result) }
    }
}
