import CSandbox
import Glibc

/// The refused calls of one run, answered by its supervisor: the seccomp listener the program
/// handed up (through init, on the control socket), each user notification read, classified
/// (`RefusalRules`), counted and answered with the policy's errno — or, for a policy that kills,
/// the whole sandbox killed while the call waits (it never runs). In a trial run (`learning`)
/// every refused call is let through instead (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`) and recorded.
///
/// Answers are throttled by a token bucket (`SandboxConfiguration.refusalsPerSecond`, with a
/// burst of as many): a program refusing itself in a tight loop waits for its answers, its own
/// wall clock running, and costs the server a bounded share of a core. Confined to the run's
/// supervisor thread.
final class RefusalListener {
    /// The control socket the listener comes on; -1 once it came (or never will).
    private(set) var control: Int32
    /// The listener; -1 until it came, and once every process of the filter is gone.
    private(set) var fd: Int32 = -1
    private let policy: SeccompPolicy
    /// Built at the first refusal: most runs refuse nothing, and building the rules (the
    /// policy's permitted and denied names as sets) costs more than the rest of a launch's
    /// bookkeeping.
    private lazy var rules = RefusalRules(policy)
    private let learning: Bool
    private let startedAtMs: Int64
    private let ratePerSecond: Double
    private var tokens: Double
    private var refilledAtMicros: Int64
    private var byLabel: [String: Int] = [:]
    private var calls: [DeniedCall] = []
    private var byNote: [String: Int] = [:]
    private var trialNotes: [TrialNote] = []
    /// The most distinct notes of a trial run kept (each kind).
    static let maxNotes = 32

    /// A trial run's connects and missing paths, in the order first seen.
    var notes: [TrialNote] { trialNotes }

    init(control: Int32, policy: SeccompPolicy, learning: Bool, startedAtMs: Int64, ratePerSecond: Int) {
        self.control = control
        self.policy = policy
        self.learning = learning
        self.startedAtMs = startedAtMs
        self.ratePerSecond = Double(max(1, ratePerSecond))
        tokens = self.ratePerSecond
        refilledAtMicros = MonotonicClock.nowMicros()
    }

    /// What was refused, in the order first seen.
    var denied: [DeniedCall] { calls }

    /// Takes the listener from the control socket (readable): done when it came or init closed
    /// the socket without one (the program ended before loading its filter).
    func receiveListener() {
        let r = cs_receive_listener(control)
        if r == -EAGAIN || r == -EINTR { return }
        if r > 0 { fd = r }
        control = -1
    }

    /// Whether an answer may be given now (the bucket holds a token); refills it first.
    func mayAnswer() -> Bool {
        guard fd >= 0 else { return false }
        let now = MonotonicClock.nowMicros()
        tokens = min(ratePerSecond, tokens + Double(now - refilledAtMicros) * ratePerSecond / 1_000_000)
        refilledAtMicros = now
        return tokens >= 1
    }

    /// Milliseconds until the next token, when the bucket is empty (a poll timeout).
    var msUntilToken: Int64 {
        guard fd >= 0, tokens < 1 else { return Int64.max }
        return max(1, Int64(((1 - tokens) * 1000 / ratePerSecond).rounded(.up)))
    }

    /// Reads one notification (the listener is readable) and answers it. Returns the call when
    /// the policy kills for it: the caller kills the sandbox, the call left unanswered.
    func answerOne() -> DeniedCall? {
        var n = cs_notification()
        let r = cs_notification_receive(fd, &n)
        guard r == 0 else { return nil }  // ENOENT: the caller went away meanwhile
        tokens -= 1
        let (label, answer) = rules.classify(nr: n.nr, args: n.args)
        if answer == .permitted {
            // A trial run's watched call: read what it asks for, then let it go on.
            if learning { observe(label, n) }
            _ = cs_notification_answer(fd, n.id, 0)
            return nil
        }
        let index = record(label, kill: answer == .kill && !learning)
        switch answer {
        case .permitted: break
        case _ where learning: _ = cs_notification_answer(fd, n.id, 0)
        case .errno(let e): _ = cs_notification_answer(fd, n.id, e)
        case .kill: return calls[index]
        }
        return nil
    }

    /// Adds what the run's poll watches for its refusals: the control socket until the listener
    /// came, the listener while the bucket holds a token — else the refused call waits (its
    /// program's clock running) and the poll's `timeout` shortens to the next token.
    func watch(_ fds: inout [pollfd], timeout: inout Int64) {
        if control >= 0 { fds.append(pollfd(fd: control, events: Int16(POLLIN), revents: 0)) }
        if mayAnswer() {
            fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
        } else {
            timeout = min(timeout, msUntilToken)
        }
    }

    /// Handles a polled descriptor when it is the control socket or the listener: the listener
    /// taken, a call answered (`kill` called when the policy kills for it), or the listener's end.
    /// False for any other descriptor.
    func handle(_ p: pollfd, kill: () -> Void) -> Bool {
        if p.fd == control {
            receiveListener()
            return true
        }
        guard p.fd == fd else { return false }
        if p.revents & Int16(POLLIN) != 0 {
            if answerOne() != nil { kill() }
        } else {
            listenerEnded()
        }
        return true
    }

    /// The listener hung up: every process under the filter is gone.
    func listenerEnded() {
        close()
    }

    /// A connect's destination, or an absolute path opened that the sandbox lacks and the host
    /// has. Memory is read from the caller's pid, then the notification checked still valid (the
    /// pid was still the caller's).
    private func observe(_ call: String, _ n: cs_notification) {
        let note: TrialNote?
        switch call {
        case "connect":
            var address = [UInt8](repeating: 0, count: 128)
            let length = Int(min(n.args.2, 128))
            let got = address.withUnsafeMutableBytes { cs_read_process_memory(pid_t(n.pid), n.args.1, $0.baseAddress, length) }
            guard got >= 2 else { return }
            note = TrialNote(kind: .connect, detail: Self.describe(sockaddr: Array(address[0..<got])), count: 1)
        case "open", "openat", "openat2":
            guard let path = readString(pid: pid_t(n.pid), at: call == "open" ? n.args.0 : n.args.1), path.hasPrefix("/"),
                  cs_path_exists_in_root(pid_t(n.pid), path) == -ENOENT else { return }
            var st = stat()
            guard lstat(path, &st) == 0 else { return }  // not on the host either: a probe, not a need
            note = TrialNote(kind: .missingPath, detail: path, count: 1)
        default:
            note = nil
        }
        guard let note, cs_notification_valid(fd, n.id) != 0 else { return }
        let key = "\(note.kind.rawValue) \(note.detail)"
        if let i = byNote[key] {
            trialNotes[i].count += 1
        } else if trialNotes.filter({ $0.kind == note.kind }).count < Self.maxNotes {
            trialNotes.append(note)
            byNote[key] = trialNotes.count - 1
        }
    }

    /// A NUL-terminated string of another process (at most PATH_MAX bytes), read a page at a
    /// time (a read across into an unmapped page fails whole).
    private func readString(pid: pid_t, at address: UInt64) -> String? {
        var bytes: [UInt8] = []
        var next = address
        while bytes.count < 4096 {
            let chunk = Int(4096 - next % 4096)
            var buffer = [UInt8](repeating: 0, count: chunk)
            let got = buffer.withUnsafeMutableBytes { cs_read_process_memory(pid, next, $0.baseAddress, chunk) }
            guard got > 0 else { return nil }
            if let end = buffer[0..<got].firstIndex(of: 0) {
                bytes += buffer[0..<end]
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes += buffer[0..<got]
            next += UInt64(got)
        }
        return nil
    }

    /// `AF_INET 93.184.216.34:443`, `AF_INET6 [::1]:8080`, `AF_UNIX /run/x.sock`, `AF_UNIX @abstract`.
    static func describe(sockaddr bytes: [UInt8]) -> String {
        let family = UInt16(bytes[0]) | UInt16(bytes[1]) << 8
        let port = bytes.count >= 4 ? Int(bytes[2]) << 8 | Int(bytes[3]) : 0
        switch family {
        case 2 where bytes.count >= 8:
            return "AF_INET \(bytes[4]).\(bytes[5]).\(bytes[6]).\(bytes[7]):\(port)"
        case 10 where bytes.count >= 24:
            var text = [CChar](repeating: 0, count: 64)
            var raw = Array(bytes[8..<24])
            _ = inet_ntop(AF_INET6, &raw, &text, 64)
            return "AF_INET6 [\(String(cString: text))]:\(port)"
        case 1:
            let path = bytes.dropFirst(2)
            if path.first == 0 { return "AF_UNIX @" + String(decoding: path.dropFirst().prefix { $0 != 0 }, as: UTF8.self) }
            return "AF_UNIX " + String(decoding: path.prefix { $0 != 0 }, as: UTF8.self)
        default:
            return RefusalRules.familyName(UInt64(family))
        }
    }

    private func record(_ label: String, kill: Bool) -> Int {
        if let i = byLabel[label] {
            calls[i].count += 1
            return i
        }
        calls.append(DeniedCall(syscall: label, count: 1, action: kill ? .kill : .errno,
                                firstAtMs: max(0, MonotonicClock.nowMs() - startedAtMs)))
        byLabel[label] = calls.count - 1
        return calls.count - 1
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    deinit { close() }
}
