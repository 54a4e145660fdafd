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
    private let name: String
    private let handle: RunHandle

    init(sandbox: Sandbox, job: Job, name: String, handle: RunHandle) {
        self.sandbox = sandbox
        self.job = job
        self.name = name
        self.handle = handle
    }

    func run() {
        handle.finish(execute())
    }

    /// Why the supervisor killed the run, if it did.
    private enum KillReason {
        case wall, cpu, output, cancelled
    }

    private func execute() -> RunResult {
        let limits = job.policy.limits
        let started = Clock.nowMs()
        func failed(_ failure: SetupFailure) -> RunResult {
            RunResult(verdict: .setupFailed, wallMs: Clock.nowMs() - started, setupFailure: failure)
        }

        let plan: LaunchPlan
        do {
            plan = try LaunchPlan(policy: job.policy, command: job.request.command,
                                  environment: job.request.environment, files: job.request.files,
                                  seccomp: job.seccomp, configuration: sandbox.configuration, bare: job.bare)
        } catch {
            return failed(error.setupFailure)
        }
        defer { plan.release() }

        var cgroup: (any RunCgroup)?
        if !job.bare, let backend = sandbox.cgroups {
            let cgroupLimits = CgroupLimits(memoryBytes: limits.memoryBytes, processes: limits.processes,
                                            cpuQuota: limits.cpuQuota, cpuWeight: limits.cpuWeight)
            do { cgroup = try backend.create(name: name, limits: cgroupLimits) } catch {
                return failed(SetupFailure(stage: "cgroup: \(error.operation)", subject: error.path, errno: error.errno))
            }
        }
        defer {
            if let cgroup { try? cgroup.destroy() }
        }

        // Pipes: [0] read end, [1] write end, all close-on-exec in the parent.
        guard let stdinPipe = Pipe(), let stdoutPipe = Pipe(), let stderrPipe = Pipe(),
              let syncPipe = Pipe(), let reportPipe = Pipe() else {
            return failed(SetupFailure(stage: "pipe", errno: errno))
        }
        var parentEnds: [Int32] = [stdinPipe.write, stdoutPipe.read, stderrPipe.read, syncPipe.write, reportPipe.read]
        var childEnds: [Int32] = [stdinPipe.read, stdoutPipe.write, stderrPipe.write, syncPipe.read, reportPipe.write]
        defer { (parentEnds + childEnds).forEach { if $0 >= 0 { close($0) } } }
        plan.setDescriptors(stdin: stdinPipe.read, stdout: stdoutPipe.write, stderr: stderrPipe.write,
                            sync: syncPipe.read, report: reportPipe.write)

        var config = plan.config
        let pid = cs_spawn(&config)
        guard pid > 0 else { return failed(SetupFailure(stage: "clone", errno: -pid)) }
        for fd in childEnds { close(fd) }
        childEnds = []
        let pidfd = cs_pidfd_open(pid)
        defer { if pidfd >= 0 { close(pidfd) } }
        func killChild() {
            if pidfd >= 0 { _ = cs_pidfd_send_signal(pidfd, SIGKILL) } else { kill(pid, SIGKILL) }
        }
        func abandon(_ failure: SetupFailure) -> RunResult {
            killChild()
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
            return failed(failure)
        }

        if !job.bare {
            let map = "0 \(sandbox.configuration.hostUID) 1\n"
            let gmap = "0 \(sandbox.configuration.hostGID) 1\n"
            for (file, content) in [("uid_map", map), ("gid_map", gmap)] {
                let path = "/proc/\(pid)/\(file)"
                if let err = FileWriter.write(path, content) {
                    return abandon(SetupFailure(stage: "write \(file)", subject: path, errno: err))
                }
            }
            if let cgroup {
                do { try cgroup.join(pid: pid) } catch {
                    return abandon(SetupFailure(stage: "cgroup: \(error.operation)", subject: error.path, errno: error.errno))
                }
            }
            var go: UInt8 = 1
            guard write(syncPipe.write, &go, 1) == 1 else {
                return abandon(SetupFailure(stage: "release child", errno: errno))
            }
        }
        let wentAt = Clock.nowMs()
        let deadline = wentAt + limits.wallTimeMs

        // stdin: written as the program reads it; closed when done (or at once when empty).
        let stdinBytes = job.request.stdin ?? []
        var stdinOffset = 0
        func closeStdin() {
            if let i = parentEnds.firstIndex(of: stdinPipe.write) {
                close(stdinPipe.write)
                parentEnds[i] = -1
            }
        }
        if stdinBytes.isEmpty { closeStdin() }
        for fd in [stdinPipe.write, stdoutPipe.read, stderrPipe.read] where fd >= 0 {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }

        var stdout = StreamCapture(stream: .stdout, cap: limits.stdoutBytes, onOutput: job.request.onOutput)
        var stderr = StreamCapture(stream: .stderr, cap: limits.stderrBytes, onOutput: job.request.onOutput)
        var reportEOF = false
        var reportBuffer: [UInt8] = []
        var exitedReport: cs_report?
        var setupReport: cs_report?
        var killReason: KillReason?
        var killedAt: Int64 = 0
        var endedAt: Int64?
        var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
        let cpuLimitNs = UInt64(limits.cpuTimeMs) * 1_000_000
        var nextCpuCheck = wentAt + Int64(sandbox.configuration.cpuCheckIntervalMs)

        func killRun(_ reason: KillReason) {
            guard killReason == nil, endedAt == nil else { return }
            killReason = reason
            killedAt = Clock.nowMs()
            killChild()
        }

        while !(stdout.eof && stderr.eof && reportEOF) {
            let now = Clock.nowMs()
            if killReason != nil && now - killedAt > 5_000 { break }  // nothing may keep us here
            var timeout: Int64 = killReason == nil ? min(deadline - now, nextCpuCheck - now) : 100
            timeout = max(0, timeout)

            var fds: [pollfd] = []
            let stdinOpen = parentEnds.contains(stdinPipe.write) && stdinPipe.write >= 0
            if !stdout.eof { fds.append(pollfd(fd: stdoutPipe.read, events: Int16(POLLIN), revents: 0)) }
            if !stderr.eof { fds.append(pollfd(fd: stderrPipe.read, events: Int16(POLLIN), revents: 0)) }
            if !reportEOF { fds.append(pollfd(fd: reportPipe.read, events: Int16(POLLIN), revents: 0)) }
            if stdinOpen { fds.append(pollfd(fd: stdinPipe.write, events: Int16(POLLOUT), revents: 0)) }
            fds.append(pollfd(fd: handle.cancelFD, events: Int16(POLLIN), revents: 0))
            let ready = poll(&fds, nfds_t(fds.count), Int32(timeout))
            if ready < 0 && errno != EINTR { break }

            for p in fds where p.revents != 0 {
                switch p.fd {
                case stdoutPipe.read, stderrPipe.read:
                    let overflowed = p.fd == stdoutPipe.read
                        ? drain(fd: p.fd, into: &stdout, buffer: &readBuffer)
                        : drain(fd: p.fd, into: &stderr, buffer: &readBuffer)
                    if overflowed && job.policy.outputOverflow == .kill { killRun(.output) }
                case reportPipe.read:
                    let n = readBuffer.withUnsafeMutableBytes { read(reportPipe.read, $0.baseAddress, $0.count) }
                    if n > 0 {
                        reportBuffer.append(contentsOf: readBuffer[0..<n])
                        let size = MemoryLayout<cs_report>.size
                        while reportBuffer.count >= size {
                            let record = reportBuffer.withUnsafeBytes { $0.loadUnaligned(as: cs_report.self) }
                            reportBuffer.removeFirst(size)
                            if record.kind == Int32(CS_REPORT_SETUP_FAILED.rawValue) { setupReport = record }
                            if record.kind == Int32(CS_REPORT_EXITED.rawValue) {
                                exitedReport = record
                                endedAt = Clock.nowMs()
                            }
                        }
                    } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                        reportEOF = true
                        if endedAt == nil { endedAt = Clock.nowMs() }
                    }
                case stdinPipe.write:
                    if p.revents & Int16(POLLOUT) != 0 {
                        let n = stdinBytes.withUnsafeBytes { bytes in
                            write(stdinPipe.write, bytes.baseAddress! + stdinOffset, min(65536, bytes.count - stdinOffset))
                        }
                        if n > 0 { stdinOffset += n }
                        if stdinOffset >= stdinBytes.count || (n < 0 && errno != EAGAIN && errno != EINTR) { closeStdin() }
                    } else {
                        closeStdin()  // POLLERR/POLLHUP: the program closed its stdin
                    }
                case handle.cancelFD:
                    killRun(.cancelled)
                default:
                    break
                }
            }

            let after = Clock.nowMs()
            if killReason == nil && endedAt == nil {
                if after >= deadline { killRun(.wall) }
                if after >= nextCpuCheck, let cgroup {
                    nextCpuCheck = after + Int64(sandbox.configuration.cpuCheckIntervalMs)
                    if let used = cgroup.cpuUsageNs(), used >= cpuLimitNs { killRun(.cpu) }
                }
            }
        }
        if killReason != nil { killChild() }

        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, __WALL, &usage) < 0 && errno == EINTR {}
        let finishedAt = endedAt ?? Clock.nowMs()
        let stats = cgroup?.stats()
        if let cgroup {
            cgroup.killAll()
            do { try cgroup.destroy() } catch {
                // Reported on the result? A leftover cgroup is found again by recovery.
                FileWriter.warn("confine: \(error)")
            }
        }

        // The program's own wait status: from init's report, or (bare) from waiting on it.
        var programStatus: Int32?
        if job.bare { programStatus = status } else if let exitedReport { programStatus = exitedReport.status }

        var result = RunResult(verdict: .exited)
        result.wallMs = max(0, finishedAt - wentAt)
        let rusageMs = Int64(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000
            + Int64(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000
        result.cpuMs = stats?.cpuUsageNs.map { Int64($0 / 1_000_000) } ?? rusageMs
        result.memoryPeakBytes = stats?.memoryPeakBytes ?? UInt64(max(0, usage.ru_maxrss)) * 1024
        result.oomKills = stats?.oomKills ?? 0
        result.stdout = stdout.kept
        result.stderr = stderr.kept
        result.stdoutBytes = stdout.total
        result.stderrBytes = stderr.total
        result.stdoutTruncated = stdout.truncated
        result.stderrTruncated = stderr.truncated

        if let programStatus {
            if cs_wifexited(programStatus) != 0 {
                result.exitCode = cs_wexitstatus(programStatus)
            } else if cs_wifsignaled(programStatus) != 0 {
                result.signal = cs_wtermsig(programStatus)
            }
        } else if killReason != nil {
            result.signal = SIGKILL
        }

        let cpuExceeded = (stats?.cpuUsageNs ?? 0) >= cpuLimitNs && cpuLimitNs > 0
        if let setupReport {
            result.verdict = .setupFailed
            result.setupFailure = SetupFailure(
                stage: String(cString: cs_stage_name(setupReport.stage)),
                subject: plan.subject(stage: setupReport.stage, index: setupReport.index),
                errno: setupReport.err)
            result.exitCode = nil
            result.signal = nil
        } else if killReason == .cancelled {
            result.verdict = .cancelled
        } else if killReason == .wall {
            result.verdict = .wallTimeout
        } else if killReason == .cpu || result.signal == SIGXCPU || (result.signal == SIGKILL && cpuExceeded) {
            result.verdict = .cpuTimeout
        } else if result.oomKills > 0 {
            result.verdict = .memoryLimit
        } else if killReason == .output {
            result.verdict = .outputLimit
        } else if result.signal != nil {
            result.verdict = .signaled
        } else if programStatus == nil {
            // init died without a report: killed from outside, or the host refused something.
            result.verdict = .setupFailed
            result.setupFailure = SetupFailure(stage: "sandbox init ended without a report", errno: 0)
        }
        return result
    }

    /// Reads what is available (bounded per call so one flood cannot starve the rest).
    /// Returns true when the stream has just passed its cap.
    private func drain(fd: Int32, into capture: inout StreamCapture, buffer: inout [UInt8]) -> Bool {
        var overflowed = false
        for _ in 0..<16 {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                if capture.append(buffer[0..<n]) { overflowed = true }
                continue
            }
            if n == 0 || (errno != EAGAIN && errno != EINTR) { capture.eof = true }
            break
        }
        return overflowed
    }
}

/// One output stream: the first `cap` bytes kept, every byte counted.
struct StreamCapture {
    let stream: OutputStreamName
    let cap: UInt64
    let onOutput: (@Sendable (OutputChunk) -> Void)?
    var kept: [UInt8] = []
    var total: UInt64 = 0
    var eof = false
    var truncated: Bool { total > cap }

    init(stream: OutputStreamName, cap: UInt64, onOutput: (@Sendable (OutputChunk) -> Void)?) {
        self.stream = stream
        self.cap = cap
        self.onOutput = onOutput
    }

    /// Returns true when these bytes pass the cap for the first time.
    mutating func append(_ bytes: ArraySlice<UInt8>) -> Bool {
        let wasTruncated = truncated
        let room = cap > UInt64(kept.count) ? Int(cap - UInt64(kept.count)) : 0
        if room > 0 {
            let part = Array(bytes.prefix(room))
            let offset = UInt64(kept.count)
            kept.append(contentsOf: part)
            onOutput?(OutputChunk(stream: stream, offset: offset, bytes: part))
        }
        total += UInt64(bytes.count)
        return truncated && !wasTruncated
    }
}

/// A pipe whose two ends are close-on-exec.
struct Pipe {
    let read: Int32
    let write: Int32

    init?() {
        var fds: [Int32] = [-1, -1]
        guard cs_pipe_cloexec(&fds) == 0 else { return nil }
        read = fds[0]
        write = fds[1]
    }
}

/// Monotonic milliseconds.
enum Clock {
    static func nowMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
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
