import Domain
import Foundation
import HumanText
import Wire

/// Reads the `retry` member of a job's body: an object (`WireRetryBody`'s members, unknown ones
/// refused), merged over the job's current policy on a PATCH, validated (422 naming
/// `retry.max_attempts`, `retry.on[1]`, …); or `null`, which removes it.
struct RetryReader {
    /// The members a retry body may have, as the wire type declares them.
    static let fields = WireRetryBody.wireNames

    /// nil: the body has no `retry`; `.some(nil)`: `null` (remove); else the policy to store.
    static func read(_ body: BodyReader, current: RetryPolicy?) throws(Problem) -> RetryPolicy?? {
        guard let value = body.members["retry"] else { return nil }
        if value == .null { return .some(nil) }
        let reader = try BodyReader(value, path: "retry", allowed: fields)
        var policy = current ?? RetryPolicy()
        if let attempts = try reader.integer("max_attempts", in: RetryPolicy.attemptsRange) { policy.maxAttempts = attempts }
        if let on = try reader.strings("on") {
            guard !on.isEmpty else { throw .validation("retry.on", "retry.on is empty; leave it out for FAILED and TIMED_OUT") }
            for (i, name) in on.enumerated() where !RetryPolicy.retryable.contains(name) {
                let why = ["SUCCESS", "CANCELLED", "cancelled"].contains(name)
                    ? "\(name) is never retried (a success, or a cancellation that stops the chain)"
                    : "\"\(name)\" is not a failure status or verdict\(Suggestions.didYouMean(name, in: RetryPolicy.retryable))"
                throw .validation("retry.on[\(i)]", "retry.on[\(i)]: \(why); expected some of \(RetryPolicy.retryable.joined(separator: ", "))")
            }
            policy.on = on
        }
        if let delay = try duration(reader, "initial_delay") { policy.initialDelayMs = delay }
        if let delay = try duration(reader, "max_delay") { policy.maxDelayMs = delay }
        if let multiplier = try reader.number("multiplier") {
            guard (1...10).contains(multiplier) else {
                throw .validation("retry.multiplier", "retry.multiplier: \(multiplier) is out of range 1-10")
            }
            policy.multiplier = multiplier
        }
        if let jitter = try reader.bool("jitter") { policy.jitter = jitter }
        if policy.initialDelayMs > policy.maxDelayMs {
            throw .validation("retry.initial_delay", "retry.initial_delay (\(HumanUnits.formatMilliseconds(policy.initialDelayMs))) "
                              + "is longer than retry.max_delay (\(HumanUnits.formatMilliseconds(policy.maxDelayMs)))")
        }
        return .some(policy)
    }

    /// The longest delay between attempts.
    static let longestDelayMs: Int64 = 24 * 3_600_000

    /// A duration member: a text with its unit (`10s`, `1.5m`, `500ms`) or a number of seconds.
    static func duration(_ reader: BodyReader, _ key: String) throws(Problem) -> Int64? {
        let field = reader.field(key)
        var ms: Int64
        if let text = try? reader.string(key) {
            do { ms = try HumanUnits.parseMilliseconds(text) } catch {
                throw .validation(field, "\(field): \(error.message)")
            }
        } else if let seconds = try reader.number(key) {
            guard seconds >= 0, seconds * 1000 <= Double(longestDelayMs) else {
                throw .validation(field, "\(field): \(seconds) seconds is out of range 0-86400")
            }
            ms = Int64((seconds * 1000).rounded())
        } else {
            return nil
        }
        guard ms <= longestDelayMs else { throw .validation(field, "\(field): at most 24h") }
        return ms
    }
}
