import CSandbox
import Glibc

/// A sandbox's init process (a child of this process, cloned by the spawner), placed in its cgroup, building (or having built) the
/// policy's root and waiting for its run on the control socket. Holds the parent's ends of its
/// pipes. Owned by one thread at a time: the pool's, then the run supervisor's.
final class SandboxProcess: @unchecked Sendable {
    let pid: pid_t
    let pidfd: Int32
    let cgroup: (any RunCgroup)?
    let plan: LaunchPlan
    /// Parent ends: stdin (write), stdout and stderr (read), control socket, report (read).
    private(set) var stdin: Int32
    let stdout: Int32
    let stderr: Int32
    let control: Int32
    let report: Int32
    /// The host uid and gid its root maps to, its own while it lives; given back once it is
    /// reaped and its descriptors closed.
    let hostID: UInt32
    /// The cgroup files init was given to move itself in through, in order: a failure
    /// report's index (CS_STAGE_CGROUP_JOIN) names one.
    private(set) var joinPaths: [String] = []
    private let hostIDs: HostIDs
    private var holdsHostID = true

    private init(pid: pid_t, pidfd: Int32, cgroup: (any RunCgroup)?, plan: LaunchPlan,
                 stdin: Int32, stdout: Int32, stderr: Int32, control: Int32, report: Int32,
                 hostID: UInt32, hostIDs: HostIDs) {
        self.pid = pid
        self.pidfd = pidfd
        self.cgroup = cgroup
        self.plan = plan
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.control = control
        self.report = report
        self.hostID = hostID
        self.hostIDs = hostIDs
    }

    /// Creates the cgroup, has the spawner clone init into fresh namespaces (as our child), maps
    /// its ids, places it in the cgroup and lets it build the root. The run itself is sent
    /// later with `start(_:)`.
    static func spawn(plan: LaunchPlan, spawner: Spawner, cgroups: (any CgroupBackend)?, cgroupName: String,
                      limits: Limits, hostIDs: HostIDs, placement: CgroupPlacement) throws(LaunchError) -> SandboxProcess {
        guard let hostID = hostIDs.take() else {
            throw LaunchError(stage: "take a host id for the sandbox",
                              subject: "all \(hostIDs.count) ids from \(hostIDs.first) (sandbox_id_first, sandbox_id_count) are held by live sandboxes",
                              errno: EAGAIN)
        }
        var cgroup: (any RunCgroup)?
        if let cgroups {
            do { cgroup = try cgroups.create(name: cgroupName, limits: CgroupLimits(limits)) } catch {
                hostIDs.give(hostID)
                throw LaunchError(stage: "cgroup: \(error.operation)", subject: error.path, errno: error.errno)
            }
        }
        // cgroup v2: init is born in its cgroup when the spawner may put it there.
        let directory = placement.intoCgroup ? ((try? cgroup?.openDirectory()) ?? nil) ?? -1 : -1
        defer { if directory >= 0 { close(directory) } }
        let spawned: Spawner.Spawned
        do { spawned = try spawner.spawn(plan, cgroupDirectory: directory) } catch {
            if let cgroup { try? cgroup.destroy() }
            hostIDs.give(hostID)
            throw error
        }
        if directory >= 0 { placement.launched(bornInCgroup: spawned.bornInCgroup, refusal: spawned.intoCgroupErrno) }
        // Sending a large run waits for init to read it; never forever (a hung mount, say).
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        _ = setsockopt(spawned.control, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let process = SandboxProcess(pid: spawned.pid, pidfd: spawned.pidfd, cgroup: cgroup, plan: plan,
                                     stdin: spawned.stdin, stdout: spawned.stdout, stderr: spawned.stderr,
                                     control: spawned.control, report: spawned.report, hostID: hostID, hostIDs: hostIDs)
        // init is our child (CLONE_PARENT): its pid cannot be reused before we reap it.
        for file in ["uid_map", "gid_map"] {
            let path = "/proc/\(spawned.pid)/\(file)"
            if let err = FileWriter.write(path, "0 \(hostID) 1\n") {
                process.discard()
                throw LaunchError(stage: "write \(file)", subject: path, errno: err)
            }
        }
        // Not born in its cgroup: init moves itself in through the files it is given (cgroup v1:
        // no host-wide lock, see `RunCgroup.selfJoinFiles`), or is moved in by pid here.
        var joinFiles: [(path: String, fd: Int32)] = []
        if let cgroup, !spawned.bornInCgroup {
            do {
                if let files = try cgroup.selfJoinFiles() { joinFiles = files } else { try cgroup.join(pid: spawned.pid) }
            } catch {
                process.discard()
                throw LaunchError(stage: "cgroup: \(error.operation)", subject: error.path, errno: error.errno)
            }
        }
        let sent = joinFiles.map(\.fd).withUnsafeBufferPointer { cs_send_go(spawned.control, $0.baseAddress, Int32($0.count)) }
        guard sent == 0 else {
            process.discard()
            throw LaunchError(stage: "release init", errno: -sent)
        }
        process.joinPaths = joinFiles.map(\.path)
        return process
    }

    /// Whether init is still waiting (it has not died while idle).
    var isAlive: Bool {
        var p = pollfd(fd: report, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) == 0
    }

    func kill() {
        if pidfd >= 0 { _ = cs_pidfd_send_signal(pidfd, SIGKILL) } else { Glibc.kill(pid, SIGKILL) }
    }

    /// Hands the stdin pipe to the caller, who closes it.
    func takeStdin() -> Int32 {
        defer { stdin = -1 }
        return stdin
    }

    /// Reaps init; its rusage covers every process it reaped (the whole tree).
    func wait() -> (status: Int32, usage: rusage) {
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, __WALL, &usage) < 0 && errno == EINTR {}
        return (status, usage)
    }

    /// Closes the parent's descriptors and gives the host id back (init is reaped by now).
    func closeDescriptors() {
        if stdin >= 0 { Glibc.close(stdin) }
        stdin = -1
        for fd in [stdout, stderr, control, report, pidfd] where fd >= 0 { Glibc.close(fd) }
        if holdsHostID { hostIDs.give(hostID) }
        holdsHostID = false
    }

    /// Kills, reaps and removes a sandbox that will not run anything.
    func discard() {
        kill()
        _ = wait()
        closeDescriptors()
        if let cgroup { try? cgroup.destroy() }
    }
}

extension CgroupLimits {
    init(_ limits: Limits) {
        self.init(memoryBytes: limits.memoryBytes, processes: limits.processes,
                  cpuQuota: limits.cpuQuota, cpuWeight: limits.cpuWeight)
    }
}
