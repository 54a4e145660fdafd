import CSandbox
import Foundation
import Glibc
import HumanText

/// The small process every sandbox of a `Sandbox` is born from (`confine-spawner`, a C
/// executable): started by exec, never as a fork of the grown server, it holds no secrets and
/// runs as its own unprivileged host uid. Sandboxes are cloned from it (cheap: a tiny address
/// space) as children of this process, and their descriptors come back over a socket.
///
/// Promises: a spawner that cannot start makes `init` throw, saying why. Once started, its
/// death is survived: a dedicated keeper thread reaps and restarts it at once (then with a
/// growing pause if it keeps dying); a launch in flight when it died fails naming it; launches
/// asked for while it is down wait for the restart (bounded); `status` says what happened.
final class Spawner: @unchecked Sendable {
    /// What a successful spawn hands back: init's pid and the server's ends of its descriptors.
    struct Spawned {
        var pid: pid_t
        var pidfd: Int32
        var stdin: Int32
        var stdout: Int32
        var stderr: Int32
        var control: Int32
        var report: Int32
        /// init was born in the cgroup given (clone3 with CLONE_INTO_CGROUP).
        var bornInCgroup: Bool
        /// Why it was not, when a cgroup was given (an errno), else 0.
        var intoCgroupErrno: Int32
    }

    /// One running spawner: its pid and the socket to it (closed when the last user lets go).
    private final class Connection: @unchecked Sendable {
        let pid: pid_t
        let socket: Int32
        /// Exchanges are one at a time: the spawner serves requests in order.
        let exchange = NSLock()
        var nextID: UInt64 = 1
        let startedAt = Date()

        init(pid: pid_t, socket: Int32) {
            self.pid = pid
            self.socket = socket
        }

        deinit { close(socket) }
    }

    let path: String
    let uid: UInt32
    let gid: UInt32
    /// How long a launch waits for a spawner being restarted, and for one answer.
    let waitSeconds: Double
    /// Called with each spawner's pid once it is ready, before any launch may use it (the
    /// cgroup backend places it where it may create inits in run cgroups).
    private let onStart: @Sendable (pid_t) -> Void

    private let condition = NSCondition()
    private var connection: Connection?
    private var current: SpawnerStatus
    private var stopping = false
    /// Set by the keeper thread once the first start is decided.
    private var firstStart: SpawnerError??

    init(path: String, uid: UInt32, gid: UInt32, waitSeconds: Double = 10,
         onStart: @escaping @Sendable (pid_t) -> Void = { _ in }) throws(SpawnerError) {
        self.path = path
        self.uid = uid
        self.gid = gid
        self.waitSeconds = waitSeconds
        self.onStart = onStart
        current = SpawnerStatus(state: .starting, path: path)
        // The keeper thread is the parent of the spawner and, through CLONE_PARENT, the
        // parent-death thread of every sandbox: it lives as long as this spawner is kept.
        let thread = Thread { [self] in keep() }
        thread.name = "confine-spawner"
        thread.stackSize = 1 << 20
        thread.start()
        condition.lock()
        while firstStart == nil { condition.wait() }
        let outcome = firstStart!
        condition.unlock()
        if let outcome { throw outcome }
    }

    /// What the spawner is doing now, and what happened to it.
    var status: SpawnerStatus {
        condition.lock()
        defer { condition.unlock() }
        return current
    }

    /// Lets the spawner go (it exits when its socket closes) and stops restarting it.
    /// Waits up to `waitSeconds` for the spawner to have exited (it leaves its cgroup then).
    func stop(waitSeconds: Double = 0) {
        condition.lock()
        stopping = true
        if let connection { _ = shutdown(connection.socket, Int32(SHUT_RDWR)) }
        condition.broadcast()
        let deadline = Date(timeIntervalSinceNow: waitSeconds)
        while current.pid != nil && condition.wait(until: deadline) {}
        condition.unlock()
    }

    /// Asks for a new init of `plan`. Blocks (on the caller's dedicated thread) for the exchange,
    /// or while the spawner is being restarted, at most `waitSeconds`.
    /// `cgroupDirectory`: a cgroup v2 directory descriptor for init to be born in (the caller
    /// keeps and closes it), or -1.
    func spawn(_ plan: LaunchPlan, cgroupDirectory: Int32 = -1) throws(LaunchError) -> Spawned {
        var request = plan.request
        var reply = cs_spawn_reply()
        var fds = [Int32](repeating: -1, count: Int(CS_SPAWN_FD_COUNT))
        for attempt in 1...3 {
            let connection = try available()
            connection.exchange.lock()
            let id = connection.nextID
            connection.nextID += 1
            request.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: id, toByteOffset: MemoryLayout<cs_spawn_request>.offset(of: \.id)!, as: UInt64.self)
            }
            var sent: Int32 = 0
            let rc = request.withUnsafeBytes { bytes in
                cs_spawner_exchange(connection.socket, bytes.baseAddress, bytes.count, cgroupDirectory, id, &reply, &fds, &sent)
            }
            connection.exchange.unlock()
            if rc == 0 { break }
            // Never sent: the spawner was already gone; this launch waits for the next one.
            if sent == 0 && attempt < 3 && (rc == -EPIPE || rc == -ECONNRESET || rc == -ENOTCONN) {
                waitForReplacement(of: connection)
                continue
            }
            throw lost(connection, errno: -rc)
        }
        guard reply.pid > 0 else {
            throw LaunchError(stage: String(cString: cs_stage_name(reply.stage)), errno: reply.err)
        }
        return Spawned(pid: reply.pid, pidfd: fds[Int(CS_SPAWN_FD_PIDFD)], stdin: fds[Int(CS_SPAWN_FD_STDIN)],
                       stdout: fds[Int(CS_SPAWN_FD_STDOUT)], stderr: fds[Int(CS_SPAWN_FD_STDERR)],
                       control: fds[Int(CS_SPAWN_FD_CONTROL)], report: fds[Int(CS_SPAWN_FD_REPORT)],
                       bornInCgroup: reply.flags & UInt32(CS_SPAWNED_IN_CGROUP) != 0,
                       intoCgroupErrno: reply.into_cgroup_err)
    }

    /// The running spawner, waiting for a restart if need be.
    private func available() throws(LaunchError) -> Connection {
        let deadline = Date(timeIntervalSinceNow: waitSeconds)
        condition.lock()
        defer { condition.unlock() }
        while connection == nil {
            if stopping { throw LaunchError(stage: "spawner", subject: "is stopped (the sandbox is shutting down)", errno: 0) }
            if !condition.wait(until: deadline) && connection == nil {
                throw LaunchError(stage: "spawner", subject: "is not running and did not come back within \(Int(waitSeconds)) s (\(current.description))", errno: 0)
            }
        }
        return connection!
    }

    /// Waits (at most a second) until the keeper has seen `connection`'s spawner end.
    private func waitForReplacement(of connection: Connection) {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: 1)
        while self.connection === connection && condition.wait(until: deadline) {}
    }

    /// The error of a launch whose exchange failed: the spawner died (its exit, once the keeper
    /// has seen it, is named), or it did not answer in time (then it is killed and restarted).
    private func lost(_ connection: Connection, errno err: Int32) -> LaunchError {
        if err == EAGAIN || err == EWOULDBLOCK {
            kill(connection.pid, SIGKILL)
            return LaunchError(stage: "spawner", subject: "(pid \(connection.pid)) did not answer within \(Int(waitSeconds)) s; it was killed and is being restarted", errno: 0)
        }
        waitForReplacement(of: connection)
        condition.lock()
        defer { condition.unlock() }
        let how = current.lastExitPID == connection.pid ? current.lastExit.map { ": \($0)" } ?? "" : ""
        return LaunchError(stage: "spawner", subject: "(pid \(connection.pid)) ended while preparing this sandbox\(how); it is being restarted", errno: err)
    }

    // MARK: The keeper thread

    private func keep() {
        var first = true
        var pause = 0.0
        while true {
            let spawner: Connection
            switch Self.start(path: path, uid: uid, gid: gid, answerSeconds: waitSeconds) {
            case .failure(let error):
                condition.lock()
                if first {
                    firstStart = .some(error)
                    current.state = .failed
                    condition.broadcast()
                    condition.unlock()
                    return
                }
                current.state = .restarting
                current.lastFailure = error.description
                condition.unlock()
                pause = min(5, max(0.1, pause * 2))
                if sleepUnlessStopping(pause) { return }
                continue
            case .success(let started):
                spawner = started
                onStart(started.pid)
            }
            condition.lock()
            if stopping {
                condition.unlock()
                _ = shutdown(spawner.socket, Int32(SHUT_RDWR))
                Self.reap(spawner.pid)
                return
            }
            connection = spawner
            current.state = .running
            current.pid = spawner.pid
            if first {
                firstStart = .some(nil)
            } else {
                current.restarts += 1
                current.lastRestartAt = Date()
            }
            condition.broadcast()
            condition.unlock()
            first = false

            let status = Self.reap(spawner.pid)
            condition.lock()
            if connection === spawner { connection = nil }
            _ = shutdown(spawner.socket, Int32(SHUT_RDWR))  // wakes an exchange in flight
            current.lastExit = Self.describe(status)
            current.lastExitPID = spawner.pid
            current.lastExitAt = Date()
            current.pid = nil
            current.state = stopping ? .stopped : .restarting
            let stop = stopping
            let exit = current.lastExit ?? "ended"
            condition.broadcast()
            condition.unlock()
            if stop { return }
            FileWriter.warn("confine: the spawner (pid \(spawner.pid)) \(exit); restarting it")
            // A spawner that lived a while is restarted at once; one that keeps dying, slower.
            pause = Date().timeIntervalSince(spawner.startedAt) > 5 ? 0 : min(5, max(0.05, pause * 2))
            if pause > 0, sleepUnlessStopping(pause) { return }
        }
    }

    /// Sleeps up to `seconds`; true when stopping was asked meanwhile.
    private func sleepUnlessStopping(_ seconds: Double) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: seconds)
        while !stopping && condition.wait(until: deadline) {}
        if stopping { current.state = .stopped }
        return stopping
    }

    @discardableResult
    private static func reap(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    private static func describe(_ status: Int32) -> String {
        if cs_wifsignaled(status) != 0 { return "was killed by \(SignalName.name(cs_wtermsig(status)))" }
        return "exited with status \(cs_wexitstatus(status))"
    }

    /// Starts one spawner and reads its hello.
    private static func start(path: String, uid: UInt32, gid: UInt32, answerSeconds: Double) -> Result<Connection, SpawnerError> {
        guard access(path, X_OK) == 0 else { return .failure(.missingExecutable(path: path, errno: errno)) }
        var pair: [Int32] = [-1, -1]
        let rc = cs_seqpacket_pair(&pair)
        guard rc == 0 else { return .failure(.cannotStart(path: path, reason: "socketpair: \(ErrnoName.describe(-rc))")) }
        let words: [String] = [path, "--uid", String(uid), "--gid", String(gid), "--parent", String(getpid())]
        var argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) }
        argv.append(nil)
        defer { argv.forEach { free($0) } }
        let pid = cs_start_spawner(path, argv, pair[1])
        close(pair[1])
        guard pid > 0 else {
            close(pair[0])
            return .failure(.cannotStart(path: path, reason: "clone: \(ErrnoName.describe(-pid))"))
        }
        let connection = Connection(pid: pid, socket: pair[0])
        var hello = cs_spawner_hello()
        let helloRC = cs_read_spawner_hello(pair[0], Int32(answerSeconds * 1000), &hello)
        if helloRC != 0 {
            kill(pid, SIGKILL)
            let status = reap(pid)
            let ended = helloRC == -EPIPE || helloRC == -ECONNRESET
            let execFailed = cs_wifexited(status) != 0 && cs_wexitstatus(status) == 127
            var reason = "no hello from it: \(ErrnoName.describe(-helloRC))"
            if ended { reason = "it \(describe(status)) before it was ready" + (execFailed ? " (exec failed)" : "") }
            return .failure(.cannotStart(path: path, reason: reason))
        }
        if hello.err != 0 {
            reap(pid)
            return .failure(.refused(stage: hello.stage, errno: hello.err, uid: hello.uid, gid: hello.gid))
        }
        var timeout = timeval(tv_sec: Int(answerSeconds), tv_usec: 0)
        for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
            _ = setsockopt(pair[0], SOL_SOCKET, option, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        return .success(connection)
    }
}

/// What the spawner is doing and what happened to it, for `/ready` and `confine doctor`.
public struct SpawnerStatus: Sendable, Equatable, CustomStringConvertible {
    public enum State: String, Sendable {
        case starting, running, restarting, stopped, failed
    }
    public var state: State
    /// The executable.
    public var path: String
    /// The running spawner's pid.
    public var pid: pid_t?
    /// How many times it was restarted after dying.
    public var restarts = 0
    /// How the last one ended ("was killed by SIGKILL"), and when.
    public var lastExit: String?
    public var lastExitPID: pid_t?
    public var lastExitAt: Date?
    public var lastRestartAt: Date?
    /// Why the last attempt to start one failed, while restarting.
    public var lastFailure: String?

    public init(state: State, path: String) {
        self.state = state
        self.path = path
    }

    /// Whether sandboxes can be launched now.
    public var isRunning: Bool { state == .running }

    public var description: String {
        var text: String
        switch state {
        case .running: text = "running (pid \(pid ?? 0))"
        case .restarting: text = "being restarted"
        default: text = state.rawValue
        }
        if restarts > 0 || lastExit != nil {
            let exit = lastExit.map { "; the last one (pid \(lastExitPID ?? 0)) \($0)" } ?? ""
            text += "; restarted \(restarts) time\(restarts == 1 ? "" : "s")\(exit)"
            if let at = lastExitAt { text += " at \(ISO8601DateFormatter().string(from: at))" }
        }
        if state == .restarting, let failure = lastFailure { text += "; last attempt: \(failure)" }
        return text
    }
}

/// Why the spawner could not be started.
public enum SpawnerError: Error, CustomStringConvertible {
    case missingExecutable(path: String, errno: Int32)
    case cannotStart(path: String, reason: String)
    /// It started, but says it cannot work: the stage and errno of its refusal.
    case refused(stage: Int32, errno: Int32, uid: UInt32, gid: UInt32)

    public var description: String {
        switch self {
        case .missingExecutable(let path, let err):
            return "the spawner executable \(path) cannot be run: \(ErrnoName.describe(err)) — build it "
                + "(swift build --product confine-spawner, or make build) or say where it is (spawner_path, CONFINE_SPAWNER)"
        case .cannotStart(let path, let reason):
            return "the spawner \(path) could not be started: \(reason)"
        case .refused(let stage, let err, let uid, let gid):
            let words = String(cString: cs_stage_name(stage))
            var text = "the spawner cannot work (\(words): \(ErrnoName.describe(err)))"
            if stage == Int32(CS_STAGE_SPAWNER_PROBE.rawValue) {
                text += " — as uid \(uid) it cannot create the namespaces every sandbox gets; this host does not let "
                    + "unprivileged users create user namespaces (see sysctl user.max_user_namespaces, "
                    + "kernel.unprivileged_userns_clone, kernel.apparmor_restrict_unprivileged_userns)"
            } else if stage == Int32(CS_STAGE_SPAWNER_PRIVILEGES.rawValue) {
                text += " — spawner_uid/spawner_gid (\(uid)/\(gid)) must name an unprivileged user and group, not root"
            }
            return text
        }
    }
}
