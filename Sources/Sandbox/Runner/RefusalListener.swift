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
    private let rules: RefusalRules
    private let learning: Bool
    private let startedAtMs: Int64
    private let ratePerSecond: Double
    private var tokens: Double
    private var refilledAtMicros: Int64
    private var byLabel: [String: Int] = [:]
    private var calls: [DeniedCall] = []

    init(control: Int32, policy: SeccompPolicy, learning: Bool, startedAtMs: Int64, ratePerSecond: Int) {
        self.control = control
        rules = RefusalRules(policy)
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
        let index = record(label, kill: answer == .kill && !learning)
        switch answer {
        case _ where learning: _ = cs_notification_answer(fd, n.id, 0)
        case .errno(let e): _ = cs_notification_answer(fd, n.id, e)
        case .kill: return calls[index]
        }
        return nil
    }

    /// The listener hung up: every process under the filter is gone.
    func listenerEnded() {
        close()
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
