import CSandbox
import Foundation
import Glibc
import Synchronization

/// Runs programs in isolated processes: fresh namespaces, a read-only root built per run,
/// cgroup and rlimit limits, no capabilities, a seccomp filter and a wall-clock deadline.
///
/// Each run is supervised on a thread it has to itself until the run ends (`SupervisorThreads`,
/// never Swift's cooperative pool). When its result is published, no process, mount or file of the run is left; its
/// emptied cgroup is recycled for a later run (cgroup v1) or removed right after.
///
/// Sandboxes are born from a spawner (`confine-spawner`) that the `Sandbox` starts by exec:
/// a small process of its own uid holding nothing of this one's memory. Creating a `Sandbox`
/// fails when the spawner cannot start, saying why.
public final class Sandbox: Sendable {
    public let configuration: SandboxConfiguration
    /// The cgroup hierarchy runs are placed in; nil only with `cgroups: .disabled`.
    public let cgroups: (any CgroupBackend)?
    private let names: RunNames
    /// Launch plans by image, built once, at most `maxPlans` (each distinct memory override is
    /// an image of its own: the least recently used are forgotten, rebuilt if asked again).
    private let plans = Mutex<(byImage: [SandboxImage: (plan: LaunchPlan, used: UInt64)], clock: UInt64)>(([:], 0))
    /// The most launch plans kept.
    static let maxPlans = 64
    /// Sandboxes built ahead of time; nil when `warmPoolSize` is 0.
    let pool: WarmPool?
    /// Supervisors still tidying up after publishing their result (cgroup recycling).
    let housekeeping = Atomic<Int>(0)
    /// Where every init comes from.
    let spawner: Spawner
    /// The host ids live sandboxes hold, one each.
    let hostIDs: HostIDs

    /// How inits get into their cgroup (born there on cgroup v2, or moved in after clone).
    let placement: CgroupPlacement
    /// Words saying how inits get into their run's cgroup, for diagnostics.
    public var cgroupPlacement: String { placement.description }
    /// How many inits were born in their run's cgroup (cgroup v2's CLONE_INTO_CGROUP).
    public var launchesBornInCgroup: Int { placement.bornCount }

    public convenience init(configuration: SandboxConfiguration = SandboxConfiguration()) throws(SandboxError) {
        try self.init(configuration: configuration) { () throws(SandboxError) -> (any CgroupBackend)? in
            switch configuration.cgroups {
            case .required:
                do throws(CgroupError) {
                    return try CgroupDetection.detect(parent: configuration.cgroupParent, groupWeight: configuration.groupCPUWeight)
                } catch {
                    throw .cgroup(error)
                }
            case .disabled:
                return nil
            }
        }
    }

    /// `cgroupBackend` gives the hierarchy runs are placed in, once the configuration has been
    /// checked (the tests' stand-ins; `init(configuration:)` detects the host's).
    init(configuration: SandboxConfiguration, cgroupBackend: () throws(SandboxError) -> (any CgroupBackend)?) throws(SandboxError) {
        self.configuration = configuration
        if configuration.spawnerUID == 0 || configuration.spawnerGID == 0 {
            throw .configuration("spawner_uid and spawner_gid must name an unprivileged user and group, not root (0)")
        }
        if configuration.hostIDCount == 0 || UInt64(configuration.hostIDFirst) + UInt64(configuration.hostIDCount) > 4_294_967_295 {
            throw .configuration("sandbox_id_first (\(configuration.hostIDFirst)) and sandbox_id_count (\(configuration.hostIDCount)) must name at least one id, all below 4294967295")
        }
        if configuration.hostIDs.contains(0) {
            throw .configuration("sandbox_id_first must be above 0: sandboxes never run as host root")
        }
        for (key, id) in [("spawner_uid", configuration.spawnerUID), ("spawner_gid", configuration.spawnerGID)]
        where configuration.hostIDs.contains(id) || id == SandboxConfiguration.overflowID {
            throw .configuration("\(key) (\(id)) \(SandboxConfiguration.spawnerIDRule(configuration.hostIDs))")
        }
        hostIDs = HostIDs.shared(configuration.hostIDs)
        // A program that closes its stdin early must not kill the server with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        cgroups = try cgroupBackend()
        names = RunNames()
        if let cgroups { Self.removeStaleRuns(cgroups) }
        let placement = CgroupPlacement()
        self.placement = placement
        do {
            let (cgroups, uid, gid) = (cgroups, configuration.spawnerUID, configuration.spawnerGID)
            spawner = try Spawner(path: configuration.spawnerPath, uid: uid, gid: gid) { pid in
                placement.spawnerPlaced(refusal: cgroups.map { $0.adoptSpawner(pid: pid, uid: uid, gid: gid) } ?? "no cgroups")
            }
        } catch {
            throw .spawner(error)
        }
        if configuration.warmPoolSize > 0 {
            let (cgroups, names, spawner, hostIDs) = (cgroups, names, spawner, hostIDs)
            pool = WarmPool(size: configuration.warmPoolSize, maxImages: configuration.warmPoolImages) { plan, limits throws(LaunchError) in
                try SandboxProcess.spawn(plan: plan, spawner: spawner, cgroups: cgroups, cgroupName: names.next(),
                                         limits: limits, hostIDs: hostIDs, placement: placement)
            }
        } else {
            pool = nil
        }
        Self.live.withLock { $0.append(Weak(self)) }
    }

    deinit { shutdown() }

    /// Kills the idle warm sandboxes and removes the cgroups kept for reuse. Runs in progress
    /// are not affected. Called at exit for every live `Sandbox`. Blocks (a few seconds at most):
    /// call it from a thread, not from a task.
    public func shutdown() {
        pool?.shutdown()
        spawner.stop(waitSeconds: 1)
        // Let finished runs hand their cgroups back first (bounded: five seconds at most; on a
        // loaded v1 host removing a run's four directories can take more than one).
        var waited = 0
        while housekeeping.load(ordering: .sequentiallyConsistent) > 0 && waited < 5000 {
            usleep(1000)
            waited += 1
        }
        cgroups?.removeIdle()
    }

    private final class Weak: @unchecked Sendable {
        weak var sandbox: Sandbox?
        init(_ sandbox: Sandbox) { self.sandbox = sandbox }
    }

    private static let live: Mutex<[Weak]> = {
        atexit { Sandbox.shutdownAll() }
        return Mutex([])
    }()

    /// At exit: idle sandboxes would die with us, but their cgroups would stay behind.
    private static func shutdownAll() {
        let sandboxes = live.withLock { $0.compactMap(\.sandbox) }
        sandboxes.forEach { $0.shutdown() }
    }

    /// Removes run cgroups (and kills their processes) left by Confine processes that are gone:
    /// a crash, a kill -9. Run cgroups are named `<pid>-<n>` after the process that made them.
    public static func removeStaleRuns(_ cgroups: any CgroupBackend) {
        for name in cgroups.existingRuns() {
            guard let owner = name.split(separator: "-").first.flatMap({ pid_t($0) }) else { continue }
            if owner != getpid() && kill(owner, 0) != 0 && errno == ESRCH {
                do { try cgroups.remove(name: name) } catch { FileWriter.warn("confine: \(error)") }
            }
        }
    }

    func nextRunName() -> String { names.next() }

    /// What the spawner is doing, and whether (and why) it was restarted.
    public var spawnerStatus: SpawnerStatus { spawner.status }

    /// How many launch plans are kept now.
    var cachedPlanCount: Int { plans.withLock { $0.byImage.count } }

    /// How many warm sandboxes are ready now.
    var warmSandboxCount: Int { pool?.readyCount ?? 0 }

    /// The launch plan of an image, built on first use.
    func plan(for image: SandboxImage, seccomp: SeccompProgram?) throws(LaunchError) -> LaunchPlan {
        let cached = plans.withLock { state -> LaunchPlan? in
            guard let found = state.byImage[image] else { return nil }
            state.clock += 1
            state.byImage[image]!.used = state.clock
            return found.plan
        }
        if let cached { return cached }
        let plan = try LaunchPlan(image: image, seccomp: seccomp)
        plans.withLock { state in
            state.clock += 1
            state.byImage[image] = (plan, state.clock)
            while state.byImage.count > Self.maxPlans, let oldest = state.byImage.min(by: { $0.value.used < $1.value.used }) {
                state.byImage[oldest.key] = nil
            }
        }
        return plan
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
        return launch(RunSupervisor.SupervisedRun(request: prepared.request, policy: prepared.policy,
                                        seccomp: prepared.seccomp, bare: false))
    }

    /// Runs `command` with no isolation at all (plain fork + exec, same pipes and supervision):
    /// the baseline that benchmarks compare full isolation against.
    public func runBare(command: [String], policy: Policy) async -> RunResult {
        let request = RunRequest(policy: policy, command: command)
        return await launch(RunSupervisor.SupervisedRun(request: request, policy: policy, seccomp: nil, bare: true)).result()
    }

    private func launch(_ work: RunSupervisor.SupervisedRun) -> RunHandle {
        let handle = RunHandle()
        let supervisor = RunSupervisor(sandbox: self, work: work, handle: handle)
        supervisor.sendToWarmSandbox()
        SupervisorThreads.shared.run { supervisor.run() }
        return handle
    }

    /// Validates a request against its policy and compiles what can be compiled once.
    private func prepare(_ request: RunRequest) throws(SandboxError) -> (request: RunRequest, policy: Policy, seccomp: SeccompProgram?) {
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
        for file in request.files {
            if !file.path.hasPrefix("/") || file.path.split(separator: "/").contains("..") {
                throw .invalidRequest("run: file path \(file.path) must be absolute, without '..'")
            }
            if let tmpfs = policy.filesystem.tmpfs.first(where: { file.path == $0.path || file.path.hasPrefix($0.path + "/") }) {
                throw .invalidRequest("run: file \(file.path) is inside the writable tmpfs \(tmpfs.path); delivered files must stay read-only, so place them elsewhere (e.g. /sandbox/...)")
            }
        }
        if request.learning && configuration.seccomp == .disabled {
            throw .invalidRequest("run: a trial run records what the seccomp filter refuses, and this sandbox runs without seccomp (seccomp: disabled)")
        }
        if request.learning && !SeccompProgram.canReportRefusals(policy.seccomp) {
            throw .invalidRequest("run: policy \(policy.name) refuses \(SeccompProgram.listenerHandoffCalls.joined(separator: " or ")), which handing its seccomp listener to the server takes: a trial run cannot record under it")
        }
        var request = request
        request.files += try Self.placeWorkingFiles(request.workingFiles, policy: policy)
        request.workingFiles = []
        let delivered = request.files.reduce(UInt64(0)) { $0 + UInt64($1.contents.count) }
        if delivered > configuration.maxDeliveredBytes {
            throw .invalidRequest("run: the files to deliver total \(delivered) bytes; at most \(configuration.maxDeliveredBytes) (maxDeliveredBytes)")
        }
        // Without seccomp (a weaker mode the operator asked for), no filter at all.
        if configuration.seccomp == .disabled { return (request, policy, nil) }
        do {
            return (request, policy, try SeccompProgram.compile(policy.seccomp, notify: configuration.reportRefusals || request.learning,
                                                                 watch: request.learning))
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

/// Unique run names, `<pid>-<n>`, across every `Sandbox` of the process: the cgroup of each
/// run (and of each warm sandbox).
final class RunNames: Sendable {
    private static let sequence = Atomic<Int>(0)
    func next() -> String { "\(getpid())-\(Self.sequence.add(1, ordering: .relaxed).newValue)" }
}
