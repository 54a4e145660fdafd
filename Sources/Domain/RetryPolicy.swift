import Foundation

/// A job's retry policy: failed attempts are run again, as new executions (`attempt`,
/// `retry_of`), after a delay counted from the end of the previous attempt to the start of the
/// next — a durable not-before time of the queued execution, never a sleeping task.
///
/// The delay before attempt n+1 is `initial_delay × multiplier^(n−1)`, at most `max_delay`;
/// with `jitter`, a random point of its upper half (`[d/2, d]`), so that many jobs failing
/// together do not retry together. Cancelled executions are never retried, and `interrupted`
/// (the server stopped while it ran) only when `on` names it.
public struct RetryPolicy: Sendable, Equatable, Codable {
    /// Attempts in all, the first included (2…100).
    public var maxAttempts: Int
    /// The statuses (`FAILED`, `TIMED_OUT`) and verdicts (`memory_limit`, `interrupted`, …) retried.
    public var on: [String]
    public var initialDelayMs: Int64
    public var maxDelayMs: Int64
    public var multiplier: Double
    public var jitter: Bool

    public init(maxAttempts: Int = 3, on: [String] = RetryPolicy.defaultOn, initialDelayMs: Int64 = 10_000,
                maxDelayMs: Int64 = 600_000, multiplier: Double = 2, jitter: Bool = true) {
        self.maxAttempts = maxAttempts
        self.on = on
        self.initialDelayMs = initialDelayMs
        self.maxDelayMs = maxDelayMs
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// What `on` is when not given.
    public static let defaultOn = ["FAILED", "TIMED_OUT"]
    /// The values `on` may hold: the final statuses that are failures, and every verdict but
    /// `cancelled`.
    public static let retryable: [String] = ["FAILED", "TIMED_OUT"]
        + ExecutionVerdict.allCases.filter { $0 != .cancelled }.map(\.rawValue)
    /// The most attempts a policy may ask for.
    public static let attemptsRange = 2...100

    /// Whether any policy could retry an attempt that ended so: only failures are ever retried
    /// (the engine reads the job's policy only then).
    public static func mayRetry(status: ExecutionStatus, verdict: ExecutionVerdict?) -> Bool {
        (status == .failed || status == .timedOut) && verdict != .cancelled
    }

    /// Whether an attempt that ended so is retried (attempts left aside).
    public func retries(status: ExecutionStatus, verdict: ExecutionVerdict?) -> Bool {
        guard Self.mayRetry(status: status, verdict: verdict) else { return false }
        if let verdict, on.contains(verdict.rawValue) { return true }
        // A crash or shutdown of the server is not the script's failure: only when listed.
        if verdict == .interrupted { return false }
        return on.contains(status.rawValue)
    }

    /// The bounds of the delay before the attempt after `attempt` (1-based), in milliseconds.
    public func delayBounds(afterAttempt attempt: Int) -> ClosedRange<Int64> {
        let exponent = Double(max(0, attempt - 1))
        let raw = Double(initialDelayMs) * pow(multiplier, exponent)
        let capped = raw.isFinite ? min(Double(maxDelayMs), raw) : Double(maxDelayMs)
        let upper = Int64(capped.rounded())
        return jitter ? (upper / 2)...upper : upper...upper
    }

    /// The delay before the attempt after `attempt`: within `delayBounds`, at `unit` (0…1) of
    /// the way from the lower bound to the upper.
    public func delay(afterAttempt attempt: Int, unit: Double = Double.random(in: 0...1)) -> Int64 {
        let bounds = delayBounds(afterAttempt: attempt)
        let span = Double(bounds.upperBound - bounds.lowerBound)
        return bounds.lowerBound + Int64((span * min(1, max(0, unit))).rounded())
    }
}

/// A retry to queue when an attempt is stored as ended: the next attempt's number and when it
/// may start. The store inserts it in the transaction that stores the end.
public struct RetryRequest: Sendable, Equatable {
    public var attempt: Int
    public var notBefore: Date

    public init(attempt: Int, notBefore: Date) {
        self.attempt = attempt
        self.notBefore = notBefore
    }
}
