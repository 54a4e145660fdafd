import CSandbox
import Glibc

/// Launches one run and watches it to the end, on the supervisor thread it was started on:
/// feeds stdin, captures and counts output, enforces the wall and CPU deadlines, reads the
/// child's reports, reaps it, and removes its cgroup. Confined to that one thread, but for the
/// send to a warm sandbox made on the caller's thread before it is handed over
/// (`sendToWarmSandbox`).
final class RunSupervisor: @unchecked Sendable {
    /// What to run, validated and compiled by `Sandbox`.
    struct SupervisedRun: Sendable {
        var request: RunRequest
        var policy: Policy
        var seccomp: SeccompProgram?
        var bare: Bool
    }

    private let sandbox: Sandbox
    private let work: SupervisedRun
    private let handle: RunHandle

    init(sandbox: Sandbox, work: SupervisedRun, handle: RunHandle) {
        self.sandbox = sandbox
        self.work = work
        self.handle = handle
    }

    /// The sandbox once its result is known: every process of the program is gone, and init is
    /// in its last instructions (`_exit`). Reaping init (whose exit tears down its namespaces
    /// and mounts) and recycling the cgroup (emptying a v1 memory cgroup of its page cache)
    /// take milliseconds: they happen after the result is published, on this same thread.
    private var spent: SandboxProcess?
    /// The sandbox's mount namespace, held from before the run is sent when the run collects
    /// output files (`holdWorkdir`).
    private var capture: WorkdirCapture?

    func run() {
        sandbox.housekeeping.add(1, ordering: .sequentiallyConsistent)
        defer { sandbox.housekeeping.subtract(1, ordering: .sequentiallyConsistent) }
        handle.finish(execute())
        sandbox.pool?.refill()
        guard let process = spent else { return }
        _ = process.wait()
        process.closeDescriptors()
        if let cgroup = process.cgroup {
            do { try cgroup.finish() } catch {
                // A leftover cgroup is found and removed again by the next Sandbox (removeStaleRuns).
                FileWriter.warn("confine: \(error)")
            }
        }
    }

    /// Why the supervisor killed the run, if it did.
    private typealias KillReason = RunKill

    /// The parent's ends of a running program's descriptors.
    private struct Channels {
        var stdin: Int32
        var stdout: Int32
        var stderr: Int32
        /// Init's report pipe; -1 when there is none (bare runs).
        var report: Int32
        /// The control socket the filter's listener comes on; -1 when refusals are not reported.
        var refusals: Int32 = -1
    }

    /// What the watch loop saw.
    private struct Observed {
        var stdout: StreamCapture
        var stderr: StreamCapture
        var exitedReport: cs_report?
        var setupReport: cs_report?
        var killReason: KillReason?
        /// The cgroup showed every process of the program gone (only init, exiting, was left).
        var programGone = false
        var wentAt: Int64
        var endedAt: Int64?
        /// What the filter refused; nil when not reported.
        var denied: [DeniedCall]?
        /// A trial run's connects and missing paths.
        var trialNotes: [TrialNote] = []
    }

    /// A run sent to a warm sandbox on the caller's thread (`sendToWarmSandbox`).
    private struct EarlyLaunch {
        var plan: LaunchPlan
        var message: RunMessage
        var process: SandboxProcess
        var launchMicros: Int64
    }

    private var early: EarlyLaunch?
    /// A warm sandbox taken on the caller's thread that could not take the run: discarded
    /// (killed and reaped) here, never on the caller's thread.
    private var refusedWarm: SandboxProcess?

    /// Sends the run to a warm sandbox at once, on the caller's thread, when one is ready: the
    /// program starts without waiting for a supervisor thread to wake (a cross-CPU wake-up on
    /// an idle machine, a tenth of a launch of `/bin/true`). Only steps that never wait: taking
    /// a ready sandbox, its cgroup's limits and counters, a send that fits the socket's
    /// buffer. Anything else — no warm sandbox, a failure, a large run — is left to
    /// `execute` on the supervisor thread, which then does all of it as before.
    func sendToWarmSandbox() {
        guard !work.bare, let pool = sandbox.pool else { return }
        let began = MonotonicClock.nowMicros()
        let image = runImage()
        guard let (plan, message) = try? prepare(image) else { return }
        guard message.sendsWithoutWaiting, let warm = pool.take(image, plan: plan, limits: work.policy.limits) else {
            message.close()
            return
        }
        guard send(message, toWarm: warm, limits: work.policy.limits) else {
            refusedWarm = warm
            message.close()
            return
        }
        early = EarlyLaunch(plan: plan, message: message, process: warm, launchMicros: MonotonicClock.nowMicros() - began)
    }

    private func runImage() -> SandboxImage {
        var image = SandboxImage(policy: work.policy, configuration: sandbox.configuration)
        image.learning = work.request.learning
        return image
    }

    private func execute() -> RunResult {
        let started = MonotonicClock.nowMs()
        let launchBegan = MonotonicClock.nowMicros()
        func failed(_ failure: SetupFailure) -> RunResult {
            RunResult(verdict: .setupFailed, wallMs: MonotonicClock.nowMs() - started, setupFailure: failure)
        }
        if work.bare { return executeBare(launchBegan: launchBegan, failed: failed) }
        if let refused = refusedWarm {
            refused.discard()
            refusedWarm = nil
        }

        let plan: LaunchPlan, message: RunMessage, process: SandboxProcess, sendError: Int32?, launchMicros: Int64
        if let early {
            (plan, message, process, sendError, launchMicros) = (early.plan, early.message, early.process, nil, early.launchMicros)
            self.early = nil
        } else {
            let image = runImage()
            do {
                (plan, message) = try prepare(image)
                (process, sendError) = try sandboxTakingRun(image: image, plan: plan, message: message, limits: work.policy.limits)
            } catch {
                return failed(error.setupFailure)
            }
            launchMicros = MonotonicClock.nowMicros() - launchBegan
        }
        message.close()

        let initPID = process.pid
        let refusals = work.seccomp?.notifies == true ? process.control : -1
        let observed = watch(Channels(stdin: process.takeStdin(), stdout: process.stdout, stderr: process.stderr, report: process.report,
                                      refusals: refusals),
                             cgroup: process.cgroup, kill: process.kill,
                             programGone: { cgroup in cgroup.holdsOnly(initPID) })
        let collected = collectOutputs(process, observed: observed)
        let (usage, stats) = settle(process, observed: observed)
        var result = result(observed: observed, usage: usage, stats: stats, plan: plan, message: message, sendError: sendError,
                            launchMicros: launchMicros, joinPaths: process.joinPaths)
        (result.artifacts, result.skippedArtifacts) = collected
        return result
    }

    /// The launch plan of the run's image and its run message.
    private func prepare(_ image: SandboxImage) throws(LaunchError) -> (LaunchPlan, RunMessage) {
        let plan = try sandbox.plan(for: image, seccomp: work.seccomp)
        var environment = work.policy.environment.set
        for (key, value) in work.request.environment { environment[key] = value }
        let message = try RunMessage(command: work.request.command, environment: environment,
                                     files: work.request.files, limits: work.policy.limits)
        return (plan, message)
    }

    /// A sandbox that has been sent the run: a warm one when one is ready (given this run's
    /// limits), else one built now. A sandbox built now that cannot take its run has failed to
    /// build: the errno of the send is returned, and its report says why.
    private func sandboxTakingRun(image: SandboxImage, plan: LaunchPlan, message: RunMessage,
                                  limits: Limits) throws(LaunchError) -> (SandboxProcess, sendError: Int32?) {
        if let warm = sandbox.pool?.take(image, plan: plan, limits: limits) {
            if send(message, toWarm: warm, limits: limits) { return (warm, nil) }
            warm.discard()  // build a fresh one
        }
        let cold = try SandboxProcess.spawn(plan: plan, spawner: sandbox.spawner, cgroups: sandbox.cgroups,
                                            cgroupName: sandbox.nextRunName(), limits: limits,
                                            hostIDs: sandbox.hostIDs, placement: sandbox.placement)
        cold.cgroup?.startCounting()
        holdWorkdir(of: cold)
        return (cold, message.send(over: cold.control))
    }

    /// Readies a warm sandbox for this run — its cgroup's limits and counters, its working
    /// directory held when outputs are collected — and sends it the run. false when it cannot
    /// take it (a limit not written, or it died while idle): the caller discards it.
    private func send(_ message: RunMessage, toWarm warm: SandboxProcess, limits: Limits) -> Bool {
        do { try warm.cgroup?.apply(CgroupLimits(limits)) } catch { return false }
        warm.cgroup?.startCounting()
        holdWorkdir(of: warm)
        guard message.send(over: warm.control) == nil else {
            capture = nil
            return false
        }
        return true
    }

    /// Output files: the sandbox's mount namespace held before its run is sent (the program
    /// cannot have ended yet), when the run collects any.
    private func holdWorkdir(of process: SandboxProcess) {
        guard work.request.outputs != nil else { return }
        capture = WorkdirCapture(initPID: process.pid)
    }

    /// Output files, once the program has ended (killed first when it is to be): collected from
    /// the held namespace, whatever the verdict. The namespace is let go at once.
    private func collectOutputs(_ process: SandboxProcess, observed: Observed) -> ([CollectedFile], [SkippedFile]) {
        guard let outputs = work.request.outputs else { return ([], []) }
        defer { capture = nil }
        guard let capture else {
            return ([], [SkippedFile(path: "*", reason: "the sandbox ended before its working directory could be held")])
        }
        if observed.killReason != nil { process.kill() }
        return capture.collect(workdir: work.policy.filesystem.workdir, outputs: outputs)
    }

    /// After the watch: the run killed if it was to be, init reaped unless the cgroup vouched
    /// for the tree (then it is left for after the result, `spent`), the cgroup's figures read.
    private func settle(_ process: SandboxProcess, observed: Observed) -> (rusage, CgroupStats?) {
        if observed.killReason != nil { process.kill() }
        var usage = rusage()
        if !observed.programGone {
            // Unless the cgroup vouched for the tree, wait for init: its exit kills the rest.
            usage = process.wait().usage
            process.closeDescriptors()
        } else {
            spent = process
        }
        let stats = process.cgroup?.stats()
        if spent == nil, let cgroup = process.cgroup {
            cgroup.killAll()
            do { try cgroup.finish() } catch { FileWriter.warn("confine: \(error)") }
        }
        return (usage, stats)
    }

    /// The result: usage, output, how the program ended, and the verdict (`RunVerdict.classify`).
    private func result(observed: Observed, usage: rusage, stats: CgroupStats?, plan: LaunchPlan, message: RunMessage,
                        sendError: Int32?, launchMicros: Int64, joinPaths: [String]) -> RunResult {
        let limits = work.policy.limits
        var result = RunResult(verdict: .exited, launchMicros: launchMicros)
        fill(&result, observed: observed, usage: usage)
        let cpuNs = stats?.cpuUsageNs
        if let cpuNs { result.cpuMs = Int64(cpuNs / 1_000_000) }
        result.memoryPeakBytes = stats?.memoryPeakBytes ?? result.memoryPeakBytes
        result.oomKills = stats?.oomKills ?? 0
        result.denied = observed.denied
        result.trialNotes = observed.trialNotes
        if observed.killReason == .seccomp { result.signal = SIGSYS }
        else if let exited = observed.exitedReport { apply(status: exited.status, to: &result) }
        else if observed.killReason != nil { result.signal = SIGKILL }

        let cpuLimitNs = UInt64(limits.cpuTimeMs) * 1_000_000
        let cpuExceeded = cpuLimitNs > 0 && (cpuNs ?? 0) >= cpuLimitNs
        result.verdict = RunVerdict.classify(RunEnding(
            setupReported: observed.setupReport != nil, kill: observed.killReason, signal: result.signal,
            cpuLimitReached: cpuExceeded, oomKills: result.oomKills, exitReported: observed.exitedReport != nil))
        if let setup = observed.setupReport {
            let stage = cs_stage(UInt32(setup.stage))
            result.setupFailure = SetupFailure(
                stage: String(cString: cs_stage_name(setup.stage)),
                subject: subject(of: stage, index: Int(setup.index), plan: plan, message: message, joinPaths: joinPaths),
                errno: setup.err)
            result.exitCode = nil
            result.signal = nil
        } else if result.verdict == .setupFailed {
            // init died without a report: killed from outside, or the host refused something.
            result.setupFailure = sendError.map { SetupFailure(stage: "send the run", errno: $0) }
                ?? SetupFailure(stage: "sandbox init ended without a report", errno: 0)
        }
        if result.verdict == .setupFailed { result.launchMicros = 0 }  // the sandbox never took the run
        return result
    }

    /// What a failing stage of init was working on: a mount, a cgroup file, or a part of the run.
    private func subject(of stage: cs_stage, index: Int, plan: LaunchPlan, message: RunMessage, joinPaths: [String]) -> String? {
        switch stage {
        case CS_STAGE_MOUNT: return plan.subject(mount: Int32(index))
        case CS_STAGE_CGROUP_JOIN: return joinPaths.indices.contains(index) ? joinPaths[index] : nil
        default: return message.subject(stage: stage, index: Int32(index))
        }
    }

    /// The benchmarks' baseline: the same pipes and watch loop, no isolation at all.
    private func executeBare(launchBegan: Int64, failed: (SetupFailure) -> RunResult) -> RunResult {
        var pipes: [Int32] = []
        for _ in 0..<3 {
            var fds: [Int32] = [-1, -1]
            guard cs_pipe_cloexec(&fds) == 0 else {
                let err = errno  // before close() may change it
                pipes.forEach { close($0) }
                return failed(SetupFailure(stage: "pipe", errno: err))
            }
            pipes += fds
        }
        defer { pipes.forEach { if $0 >= 0 { close($0) } } }
        let argv = work.request.command.map { strdup($0) } + [nil]
        let envp = work.policy.environment.set.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        let path: UnsafePointer<CChar>? = UnsafePointer(argv[0])
        let pid = [path].withUnsafeBufferPointer { paths in
            cs_spawn_bare(paths.baseAddress, 1, argv, envp, pipes[0], pipes[3], pipes[5])
        }
        guard pid > 0 else { return failed(SetupFailure(stage: "clone", errno: -pid)) }
        let launchMicros = MonotonicClock.nowMicros() - launchBegan
        for i in [0, 3, 5] { close(pipes[i]); pipes[i] = -1 }
        let observed = watch(Channels(stdin: pipes[1], stdout: pipes[2], stderr: pipes[4], report: -1),
                             cgroup: nil, kill: { kill(pid, SIGKILL) }, programGone: { _ in false })
        pipes[1] = -1  // closed by the watch loop
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        var result = RunResult(verdict: .exited, launchMicros: launchMicros)
        fill(&result, observed: observed, usage: usage)
        apply(status: status, to: &result)
        if result.signal != nil { result.verdict = .signaled }
        return result
    }

    /// Output, counts, times and rusage-based usage (the cgroup's figures replace these).
    private func fill(_ result: inout RunResult, observed: Observed, usage: rusage) {
        result.wallMs = max(0, (observed.endedAt ?? MonotonicClock.nowMs()) - observed.wentAt)
        result.cpuMs = Int64(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000
            + Int64(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000
        result.memoryPeakBytes = UInt64(max(0, usage.ru_maxrss)) * 1024
        result.stdout = observed.stdout.kept
        result.stderr = observed.stderr.kept
        result.stdoutBytes = observed.stdout.total
        result.stderrBytes = observed.stderr.total
        result.stdoutTruncated = observed.stdout.truncated
        result.stderrTruncated = observed.stderr.truncated
    }

    private func apply(status: Int32, to result: inout RunResult) {
        if cs_wifexited(status) != 0 {
            result.exitCode = cs_wexitstatus(status)
        } else if cs_wifsignaled(status) != 0 {
            result.signal = cs_wtermsig(status)
        }
    }

    /// Feeds stdin, captures output, reads init's reports and enforces the wall and CPU
    /// limits until the output is complete and the program's processes are all gone: init's
    /// report pipe at its end (init has exited), or init's exit report received and the cgroup
    /// holding nothing but init (`programGone`). Closes stdin.
    private func watch(_ io: Channels, cgroup: (any RunCgroup)?, kill: () -> Void,
                       programGone: (any RunCgroup) -> Bool) -> Observed {
        let limits = work.policy.limits
        let wentAt = MonotonicClock.nowMs()
        let deadline = wentAt + limits.wallTimeMs
        let keep = work.request.keepOutput
        var o = Observed(stdout: StreamCapture(stream: .stdout, cap: limits.stdoutBytes, keep: keep, onOutput: work.request.onOutput),
                         stderr: StreamCapture(stream: .stderr, cap: limits.stderrBytes, keep: keep, onOutput: work.request.onOutput),
                         wentAt: wentAt)
        var stdin = StdinFeeder(fd: io.stdin, bytes: work.request.stdin ?? [])
        for fd in [stdin.fd, io.stdout, io.stderr] where fd >= 0 {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        var reports = ReportReader(fd: io.report)
        var killedAt: Int64 = 0
        var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
        let cpuLimitNs = UInt64(limits.cpuTimeMs) * 1_000_000
        let interval = Int64(sandbox.configuration.cpuCheckIntervalMs)
        var nextCpuCheck = wentAt + interval
        let refusals = io.refusals < 0 ? nil : RefusalListener(
            control: io.refusals, policy: work.policy.seccomp, learning: work.request.learning, startedAtMs: wentAt,
            ratePerSecond: work.request.learning ? 1_000_000 : sandbox.configuration.refusalsPerSecond)
        defer { refusals?.close() }

        func killRun(_ reason: KillReason) {
            guard o.killReason == nil, o.endedAt == nil else { return }
            o.killReason = reason
            killedAt = MonotonicClock.nowMs()
            kill()
        }

        func finished() -> Bool {
            guard o.stdout.eof && o.stderr.eof else { return false }
            if reports.eof { return true }
            guard o.exitedReport != nil, o.killReason == nil, let cgroup else { return false }
            o.programGone = programGone(cgroup)
            return o.programGone
        }
        while !finished() {
            let now = MonotonicClock.nowMs()
            if o.killReason != nil && now - killedAt > 5_000 { break }  // nothing may keep us here
            var timeout = o.killReason == nil && o.endedAt == nil ? max(0, min(deadline - now, nextCpuCheck - now)) : 100
            // The consumer asks for a pause: the output waits in its pipes (the program blocks on
            // them when they are full), looked at again shortly. Only while the program runs:
            // once it has ended or is killed, what is left is read at once.
            let paused = o.killReason == nil && o.endedAt == nil && (work.request.pauseOutput?() ?? false)
            if paused { timeout = min(timeout, 5) }

            var fds: [pollfd] = []
            if !o.stdout.eof && !paused { fds.append(pollfd(fd: io.stdout, events: Int16(POLLIN), revents: 0)) }
            if !o.stderr.eof && !paused { fds.append(pollfd(fd: io.stderr, events: Int16(POLLIN), revents: 0)) }
            if !reports.eof { fds.append(pollfd(fd: io.report, events: Int16(POLLIN), revents: 0)) }
            if stdin.fd >= 0 { fds.append(pollfd(fd: stdin.fd, events: Int16(POLLOUT), revents: 0)) }
            fds.append(pollfd(fd: handle.cancelFD, events: Int16(POLLIN), revents: 0))
            refusals?.watch(&fds, timeout: &timeout)
            let polled = poll(&fds, nfds_t(fds.count), Int32(timeout)), pollErrno = errno
            if polled < 0 && pollErrno != EINTR { break }

            for p in fds where p.revents != 0 {
                if p.fd == io.stdout || p.fd == io.stderr {
                    let overflowed = p.fd == io.stdout
                        ? drain(fd: p.fd, into: &o.stdout, buffer: &readBuffer)
                        : drain(fd: p.fd, into: &o.stderr, buffer: &readBuffer)
                    if overflowed && work.policy.outputOverflow == .kill { killRun(.output) }
                } else if p.fd == io.report {
                    Self.readReports(&reports, into: &o, scratch: &readBuffer)
                } else if p.fd == stdin.fd {
                    stdin.feed(revents: p.revents)
                } else if p.fd == handle.cancelFD {
                    killRun(.cancelled)
                } else {
                    _ = refusals?.handle(p) { killRun(.seccomp) }
                }
            }

            let after = MonotonicClock.nowMs()
            if o.killReason == nil && o.endedAt == nil {
                if after >= deadline { killRun(.wall) }
                if after >= nextCpuCheck, let cgroup {
                    nextCpuCheck = after + interval
                    if let used = cgroup.cpuUsageNs(), used >= cpuLimitNs { killRun(.cpu) }
                }
            }
        }
        stdin.close()
        if io.report < 0 && o.endedAt == nil { o.endedAt = MonotonicClock.nowMs() }
        o.denied = refusals?.denied
        o.trialNotes = refusals?.notes ?? []
        return o
    }

    /// Reads init's reports: a setup failure, or the program's exit (and when it came — also
    /// when the report pipe closes without one).
    private static func readReports(_ reports: inout ReportReader, into o: inout Observed, scratch: inout [UInt8]) {
        for record in reports.read(scratch: &scratch) {
            if record.kind == Int32(CS_REPORT_SETUP_FAILED.rawValue) { o.setupReport = record }
            if record.kind == Int32(CS_REPORT_EXITED.rawValue) {
                o.exitedReport = record
                o.endedAt = MonotonicClock.nowMs()
            }
        }
        if reports.eof && o.endedAt == nil { o.endedAt = MonotonicClock.nowMs() }
    }

    /// Reads what is available (bounded per call so one flood cannot starve the rest).
    /// Returns true when the stream has just passed its cap.
    private func drain(fd: Int32, into capture: inout StreamCapture, buffer: inout [UInt8]) -> Bool {
        var overflowed = false
        for _ in 0..<16 {
            let (n, readErrno) = buffer.withUnsafeMutableBytes { (read(fd, $0.baseAddress, $0.count), errno) }
            if n > 0 {
                if capture.append(buffer[0..<n]) { overflowed = true }
                continue
            }
            if n == 0 || (readErrno != EAGAIN && readErrno != EINTR) { capture.eof = true }
            break
        }
        return overflowed
    }
}
