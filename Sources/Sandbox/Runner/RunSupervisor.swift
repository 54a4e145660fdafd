import CSandbox
import Glibc

/// Launches one run and watches it to the end, on the dedicated thread it was started on:
/// feeds stdin, captures and counts output, enforces the wall and CPU deadlines, reads the
/// child's reports, reaps it, and removes its cgroup. Confined to that one thread.
final class RunSupervisor: @unchecked Sendable {
    /// What to run, validated and compiled by `Sandbox`.
    struct Job: Sendable {
        var request: RunRequest
        var policy: Policy
        var seccomp: SeccompProgram?
        var bare: Bool
    }

    private let sandbox: Sandbox
    private let job: Job
    private let handle: RunHandle

    init(sandbox: Sandbox, job: Job, handle: RunHandle) {
        self.sandbox = sandbox
        self.job = job
        self.handle = handle
    }

    /// The sandbox once its result is known: every process of the program is gone, and init is
    /// in its last instructions (`_exit`). Reaping init (whose exit unmaps its copy of our
    /// address space) and recycling the cgroup (emptying a v1 memory cgroup of its page cache)
    /// take milliseconds: they happen after the result is published, on this same thread.
    private var spent: SandboxProcess?

    func run() {
        sandbox.housekeeping.add(1, ordering: .sequentiallyConsistent)
        defer { sandbox.housekeeping.subtract(1, ordering: .sequentiallyConsistent) }
        handle.finish(execute())
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
    }

    private func execute() -> RunResult {
        let started = Clock.nowMs()
        let launchBegan = Clock.nowMicros()
        func failed(_ failure: SetupFailure) -> RunResult {
            RunResult(verdict: .setupFailed, wallMs: Clock.nowMs() - started, setupFailure: failure)
        }
        if job.bare { return executeBare(launchBegan: launchBegan, failed: failed) }

        let limits = job.policy.limits
        let image = SandboxImage(policy: job.policy, configuration: sandbox.configuration)
        let plan: LaunchPlan
        let message: RunMessage
        do {
            plan = try sandbox.plan(for: image, seccomp: job.seccomp)
            var environment = job.policy.environment.set
            for (key, value) in job.request.environment { environment[key] = value }
            message = try RunMessage(command: job.request.command, environment: environment,
                                     files: job.request.files, limits: limits)
        } catch {
            return failed(error.setupFailure)
        }
        defer { message.close() }

        // A warm sandbox when one is ready (given this run's limits), else one built now.
        var process: SandboxProcess?
        if let warm = sandbox.pool?.take(image, plan: plan, limits: limits) {
            do {
                try warm.cgroup?.apply(CgroupLimits(limits))
                process = warm
            } catch {
                warm.discard()
            }
        }
        process?.cgroup?.startCounting()
        if let warm = process, message.send(over: warm.control) != nil {
            warm.discard()  // it died while idle: build a fresh one
            process = nil
        }
        // A sandbox built now that cannot take its run has failed to build: its report says why.
        var sendError: Int32?
        if process == nil {
            do {
                let cold = try SandboxProcess.spawn(plan: plan, spawner: sandbox.spawner, cgroups: sandbox.cgroups,
                                                    cgroupName: sandbox.nextRunName(), limits: limits,
                                                    configuration: sandbox.configuration)
                cold.cgroup?.startCounting()
                sendError = message.send(over: cold.control)
                process = cold
            } catch {
                return failed(error.setupFailure)
            }
        }
        guard let process else { return failed(SetupFailure(stage: "spawn", errno: 0)) }
        message.close()
        let launchMicros = Clock.nowMicros() - launchBegan

        let initPID = process.pid
        let observed = watch(Channels(stdin: process.takeStdin(), stdout: process.stdout, stderr: process.stderr, report: process.report),
                             cgroup: process.cgroup, kill: process.kill,
                             programGone: { cgroup in cgroup.processes().allSatisfy { $0 == initPID } })
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

        var result = RunResult(verdict: .exited, launchMicros: launchMicros)
        fill(&result, observed: observed, usage: usage)
        let cpuNs = stats?.cpuUsageNs
        if let cpuNs { result.cpuMs = Int64(cpuNs / 1_000_000) }
        result.memoryPeakBytes = stats?.memoryPeakBytes ?? result.memoryPeakBytes
        result.oomKills = stats?.oomKills ?? 0
        if let exited = observed.exitedReport { apply(status: exited.status, to: &result) }
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
                subject: stage == CS_STAGE_MOUNT ? plan.subject(mount: setup.index) : message.subject(stage: stage, index: setup.index),
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
        let argv = job.request.command.map { strdup($0) } + [nil]
        let envp = job.policy.environment.set.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        let path: UnsafePointer<CChar>? = UnsafePointer(argv[0])
        let pid = [path].withUnsafeBufferPointer { paths in
            cs_spawn_bare(paths.baseAddress, 1, argv, envp, pipes[0], pipes[3], pipes[5])
        }
        guard pid > 0 else { return failed(SetupFailure(stage: "clone", errno: -pid)) }
        let launchMicros = Clock.nowMicros() - launchBegan
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
        result.wallMs = max(0, (observed.endedAt ?? Clock.nowMs()) - observed.wentAt)
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
        let limits = job.policy.limits
        let wentAt = Clock.nowMs()
        let deadline = wentAt + limits.wallTimeMs
        let keep = job.request.keepOutput
        var o = Observed(stdout: StreamCapture(stream: .stdout, cap: limits.stdoutBytes, keep: keep, onOutput: job.request.onOutput),
                         stderr: StreamCapture(stream: .stderr, cap: limits.stderrBytes, keep: keep, onOutput: job.request.onOutput),
                         wentAt: wentAt)
        var stdinFD = io.stdin
        let stdinBytes = job.request.stdin ?? []
        var stdinOffset = 0
        func closeStdin() {
            if stdinFD >= 0 { close(stdinFD) }
            stdinFD = -1
        }
        if stdinBytes.isEmpty { closeStdin() }
        for fd in [stdinFD, io.stdout, io.stderr] where fd >= 0 {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        var reportEOF = io.report < 0
        var reportBuffer: [UInt8] = []
        var killedAt: Int64 = 0
        var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
        let cpuLimitNs = UInt64(limits.cpuTimeMs) * 1_000_000
        let interval = Int64(sandbox.configuration.cpuCheckIntervalMs)
        var nextCpuCheck = wentAt + interval

        func killRun(_ reason: KillReason) {
            guard o.killReason == nil, o.endedAt == nil else { return }
            o.killReason = reason
            killedAt = Clock.nowMs()
            kill()
        }

        func finished() -> Bool {
            guard o.stdout.eof && o.stderr.eof else { return false }
            if reportEOF { return true }
            guard o.exitedReport != nil, o.killReason == nil, let cgroup else { return false }
            o.programGone = programGone(cgroup)
            return o.programGone
        }
        while !finished() {
            let now = Clock.nowMs()
            if o.killReason != nil && now - killedAt > 5_000 { break }  // nothing may keep us here
            var timeout = o.killReason == nil && o.endedAt == nil ? max(0, min(deadline - now, nextCpuCheck - now)) : 100
            // The consumer asks for a pause: the output waits in its pipes (the program blocks on
            // them when they are full), looked at again shortly. Only while the program runs:
            // once it has ended or is killed, what is left is read at once.
            let paused = o.killReason == nil && o.endedAt == nil && (job.request.pauseOutput?() ?? false)
            if paused { timeout = min(timeout, 5) }

            var fds: [pollfd] = []
            if !o.stdout.eof && !paused { fds.append(pollfd(fd: io.stdout, events: Int16(POLLIN), revents: 0)) }
            if !o.stderr.eof && !paused { fds.append(pollfd(fd: io.stderr, events: Int16(POLLIN), revents: 0)) }
            if !reportEOF { fds.append(pollfd(fd: io.report, events: Int16(POLLIN), revents: 0)) }
            if stdinFD >= 0 { fds.append(pollfd(fd: stdinFD, events: Int16(POLLOUT), revents: 0)) }
            fds.append(pollfd(fd: handle.cancelFD, events: Int16(POLLIN), revents: 0))
            let polled = poll(&fds, nfds_t(fds.count), Int32(timeout)), pollErrno = errno
            if polled < 0 && pollErrno != EINTR { break }

            for p in fds where p.revents != 0 {
                if p.fd == io.stdout || p.fd == io.stderr {
                    let overflowed = p.fd == io.stdout
                        ? drain(fd: p.fd, into: &o.stdout, buffer: &readBuffer)
                        : drain(fd: p.fd, into: &o.stderr, buffer: &readBuffer)
                    if overflowed && job.policy.outputOverflow == .kill { killRun(.output) }
                } else if p.fd == io.report {
                    let (n, readErrno) = readBuffer.withUnsafeMutableBytes { (read(io.report, $0.baseAddress, $0.count), errno) }
                    if n > 0 {
                        reportBuffer.append(contentsOf: readBuffer[0..<n])
                        let size = MemoryLayout<cs_report>.size
                        while reportBuffer.count >= size {
                            let record = reportBuffer.withUnsafeBytes { $0.loadUnaligned(as: cs_report.self) }
                            reportBuffer.removeFirst(size)
                            if record.kind == Int32(CS_REPORT_SETUP_FAILED.rawValue) { o.setupReport = record }
                            if record.kind == Int32(CS_REPORT_EXITED.rawValue) {
                                o.exitedReport = record
                                o.endedAt = Clock.nowMs()
                            }
                        }
                    } else if n == 0 || (readErrno != EINTR && readErrno != EAGAIN) {
                        reportEOF = true
                        if o.endedAt == nil { o.endedAt = Clock.nowMs() }
                    }
                } else if p.fd == stdinFD {
                    if p.revents & Int16(POLLOUT) != 0 {
                        let (n, writeErrno) = stdinBytes.withUnsafeBytes { bytes in
                            (write(stdinFD, bytes.baseAddress! + stdinOffset, min(65536, bytes.count - stdinOffset)), errno)
                        }
                        if n > 0 { stdinOffset += n }
                        if stdinOffset >= stdinBytes.count || (n < 0 && writeErrno != EAGAIN && writeErrno != EINTR) { closeStdin() }
                    } else {
                        closeStdin()  // POLLERR/POLLHUP: the program closed its stdin
                    }
                } else if p.fd == handle.cancelFD {
                    killRun(.cancelled)
                }
            }

            let after = Clock.nowMs()
            if o.killReason == nil && o.endedAt == nil {
                if after >= deadline { killRun(.wall) }
                if after >= nextCpuCheck, let cgroup {
                    nextCpuCheck = after + interval
                    if let used = cgroup.cpuUsageNs(), used >= cpuLimitNs { killRun(.cpu) }
                }
            }
        }
        closeStdin()
        if io.report < 0 && o.endedAt == nil { o.endedAt = Clock.nowMs() }
        return o
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

/// One output stream: the first `cap` bytes captured (handed to `onOutput`, and kept when
/// `keep`), every byte counted.
struct StreamCapture {
    let stream: OutputStreamName
    let cap: UInt64
    let keep: Bool
    let onOutput: (@Sendable (OutputChunk) -> Void)?
    var kept: [UInt8] = []
    /// Bytes captured so far (kept or not): at most `cap`.
    var captured: UInt64 = 0
    var total: UInt64 = 0
    var eof = false
    var truncated: Bool { total > cap }

    init(stream: OutputStreamName, cap: UInt64, keep: Bool = true, onOutput: (@Sendable (OutputChunk) -> Void)?) {
        self.stream = stream
        self.cap = cap
        self.keep = keep
        self.onOutput = onOutput
    }

    /// Returns true when these bytes pass the cap for the first time.
    mutating func append(_ bytes: ArraySlice<UInt8>) -> Bool {
        let wasTruncated = truncated
        let room = cap > captured ? Int(min(cap - captured, UInt64(Int.max))) : 0
        if room > 0 {
            let part = Array(bytes.prefix(room))
            let offset = captured
            if keep { kept.append(contentsOf: part) }
            captured += UInt64(part.count)
            onOutput?(OutputChunk(stream: stream, offset: offset, bytes: part))
        }
        total += UInt64(bytes.count)
        return truncated && !wasTruncated
    }
}

/// Monotonic time, in milliseconds or microseconds.
enum Clock {
    static func nowMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    static func nowMicros() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }
}

/// Writing small files (procfs) with the errno of a failure, and warnings on stderr.
enum FileWriter {
    /// nil on success, else the errno.
    static func write(_ path: String, _ content: String) -> Int32? {
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        let n = content.withCString { Glibc.write(fd, $0, strlen($0)) }
        return n < 0 ? errno : nil
    }

    static func warn(_ message: String) {
        let line = message + "\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
    }
}
