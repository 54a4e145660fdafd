import CoreMetrics
import Domain
import Sandbox
import Synchronization

/// The engine's metrics, each made once from one metrics factory (a server's own registry, or
/// the process-wide `MetricsSystem`), so that recording is a method call on an object already
/// at hand, never a lookup by name. Names follow Prometheus conventions: `_total` counters,
/// `_seconds` histograms, `_bytes`.
///
/// What they promise: `confine_executions_started_total` counts claims by a worker;
/// `confine_executions_finished_total{status,verdict}` counts every execution that reached a
/// final status through this engine's store (runs that ended, PENDING ones cancelled, RUNNING
/// ones interrupted at a restart); the gauges are exact for the store this engine serves.
public struct EngineMetrics: Sendable {
    /// Executions a worker claimed (a PENDING one, or one taken over from a dead worker).
    public let started: Counter
    /// Executions that reached a final status, by (status, verdict): every pair that can occur.
    let finished: [FinalState: Counter]
    /// PENDING executions.
    public let queueDepth: Meter
    /// Executions whose sandbox is running now.
    public let running: Meter
    /// Workers holding an execution (from its claim until its outcome is stored).
    public let workersBusy: Meter
    /// Workers of the engine.
    public let workers: Meter
    /// Bytes the programs wrote, captured or not, by stream.
    let outputBytes: (stdout: Counter, stderr: Counter)
    /// Processes the kernel's OOM killer ended in a run's cgroup.
    public let oomKills: Counter
    /// From the start of a run until its program was handed to its sandbox.
    public let launchDuration: CoreMetrics.Timer
    /// The wall-clock time of a program that ran (setup failures excluded).
    public let executionDuration: CoreMetrics.Timer
    /// The time of each kind of store write, queueing for the writer included.
    let storeWrites: [StoreWrite: CoreMetrics.Timer]
    /// Refused calls, by policy and syscall (counters made on first use).
    private let denied: DeniedCounters

    /// A final status and the verdict that gave it.
    struct FinalState: Hashable {
        let status: ExecutionStatus
        let verdict: ExecutionVerdict
    }

    /// The writes of `ExecutionStore`, as the `operation` label names them.
    enum StoreWrite: String, CaseIterable {
        case createJob = "create_job"
        case updateJob = "update_job"
        case deleteJob = "delete_job"
        case enqueue
        case claim
        case renewLease = "renew_lease"
        case appendOutput = "append_output"
        case finish
        case cancel
        case interruptRunning = "interrupt_running"
        case prune
    }

    public static let startedName = "confine_executions_started_total"
    public static let finishedName = "confine_executions_finished_total"
    public static let queueDepthName = "confine_queue_depth"
    public static let runningName = "confine_executions_running"
    public static let workersBusyName = "confine_workers_busy"
    public static let workersName = "confine_workers"
    public static let outputBytesName = "confine_output_bytes_total"
    public static let oomKillsName = "confine_oom_kills_total"
    public static let launchDurationName = "confine_sandbox_launch_duration_seconds"
    public static let executionDurationName = "confine_execution_duration_seconds"
    public static let storeWriteDurationName = "confine_store_write_duration_seconds"
    /// Calls refused by policies' seccomp filters, by `policy` and `syscall` (as reported in an
    /// execution's `denied`: `mount`, `socket(AF_PACKET)`, …).
    public static let deniedName = "confine_seccomp_denied_total"

    /// Bucket bounds of the engine's histograms, by metric name, for factories that take them:
    /// launches take milliseconds (a warm sandbox ~1 ms, a cold one a few), programs from
    /// milliseconds to many minutes, store writes well under a millisecond unless the writer
    /// is busy.
    public static let histogramBuckets: [String: [Duration]] = [
        launchDurationName: [0.25, 0.5, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 25, 50, 100, 250, 1000].map(milliseconds),
        executionDurationName: [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 120_000,
                                300_000, 600_000, 1_800_000, 3_600_000].map(milliseconds),
        storeWriteDurationName: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000].map(milliseconds),
    ]

    private static func milliseconds(_ ms: Double) -> Duration { .microseconds(Int64((ms * 1000).rounded())) }

    /// Every metric made from `factory`; by default the process-wide one (which discards
    /// everything unless `MetricsSystem.bootstrap` was called).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        started = Counter(label: Self.startedName, factory: factory)
        var finished: [FinalState: Counter] = [:]
        for verdict in ExecutionVerdict.allCases {
            // `exited` is SUCCESS or FAILED by its exit code; every other verdict has one status.
            for status in Set([verdict.status(exitCode: 0), verdict.status(exitCode: 1)]) {
                finished[FinalState(status: status, verdict: verdict)] = Counter(
                    label: Self.finishedName, dimensions: [("status", status.rawValue), ("verdict", verdict.rawValue)],
                    factory: factory)
            }
        }
        self.finished = finished
        queueDepth = Meter(label: Self.queueDepthName, factory: factory)
        running = Meter(label: Self.runningName, factory: factory)
        workersBusy = Meter(label: Self.workersBusyName, factory: factory)
        workers = Meter(label: Self.workersName, factory: factory)
        outputBytes = (Counter(label: Self.outputBytesName, dimensions: [("stream", "stdout")], factory: factory),
                       Counter(label: Self.outputBytesName, dimensions: [("stream", "stderr")], factory: factory))
        oomKills = Counter(label: Self.oomKillsName, factory: factory)
        launchDuration = CoreMetrics.Timer(label: Self.launchDurationName, factory: factory)
        executionDuration = CoreMetrics.Timer(label: Self.executionDurationName, factory: factory)
        var writes: [StoreWrite: CoreMetrics.Timer] = [:]
        for write in StoreWrite.allCases {
            writes[write] = CoreMetrics.Timer(label: Self.storeWriteDurationName, dimensions: [("operation", write.rawValue)],
                                  factory: factory)
        }
        storeWrites = writes
        denied = DeniedCounters(factory: factory)
    }

    /// The calls a run's policy refused, counted by policy and syscall.
    func recordDenied(_ result: RunResult, policy: String) {
        guard let calls = result.denied, !calls.isEmpty else { return }
        denied.add(calls, policy: policy)
    }

    /// One more execution in a final status.
    func finished(_ execution: Execution) {
        guard let verdict = execution.verdict else { return }
        finished[FinalState(status: execution.status, verdict: verdict)]?.increment()
    }

    /// What a finished run tells: its output, OOM kills, and (when its sandbox was set up) how
    /// long the launch and the program took.
    func record(_ result: RunResult) {
        outputBytes.stdout.increment(by: result.stdoutBytes)
        outputBytes.stderr.increment(by: result.stderrBytes)
        if result.oomKills > 0 { oomKills.increment(by: result.oomKills) }
        guard result.verdict != .setupFailed else { return }
        launchDuration.recordMicroseconds(result.launchMicros)
        executionDuration.recordMilliseconds(result.wallMs)
    }

    /// Runs a store write and records how long it took, failed or not.
    func timed<T>(_ write: StoreWrite, _ body: () async throws -> T) async rethrows -> T {
        let began = ContinuousClock.now
        defer {
            let elapsed = (ContinuousClock.now - began).components
            storeWrites[write]?.recordNanoseconds(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
        }
        return try await body()
    }
}

/// `confine_seccomp_denied_total{policy, syscall}`: one counter per pair seen, made on first use.
final class DeniedCounters: Sendable {
    private let factory: any MetricsFactory
    private let counters = Mutex<[Key: Counter]>([:])

    private struct Key: Hashable {
        let policy: String
        let syscall: String
    }

    init(factory: any MetricsFactory) { self.factory = factory }

    func add(_ calls: [DeniedCall], policy: String) {
        let found = counters.withLock { counters in
            calls.map { call -> (Counter, Int) in
                let key = Key(policy: policy, syscall: call.syscall)
                if let counter = counters[key] { return (counter, call.count) }
                let counter = Counter(label: EngineMetrics.deniedName, dimensions: [("policy", policy), ("syscall", call.syscall)],
                                      factory: factory)
                counters[key] = counter
                return (counter, call.count)
            }
        }
        for (counter, count) in found { counter.increment(by: count) }
    }
}
