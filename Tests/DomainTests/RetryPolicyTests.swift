import Domain
import Foundation
import XCTest

/// Retry delays and what is retried: bounds, never wall-clock timing.
final class RetryPolicyTests: XCTestCase {
    func testDelaysDoubleUpToTheCap() {
        let policy = RetryPolicy(maxAttempts: 10, initialDelayMs: 10_000, maxDelayMs: 60_000, multiplier: 2, jitter: false)
        XCTAssertEqual((1...6).map { policy.delayBounds(afterAttempt: $0) },
                       [10_000...10_000, 20_000...20_000, 40_000...40_000, 60_000...60_000, 60_000...60_000, 60_000...60_000])
        XCTAssertEqual(policy.delay(afterAttempt: 2, unit: 0.7), 20_000, "without jitter the delay is the bound")
    }

    func testJitterStaysInTheUpperHalf() {
        let policy = RetryPolicy(maxAttempts: 5, initialDelayMs: 1000, maxDelayMs: 600_000, multiplier: 3, jitter: true)
        XCTAssertEqual(policy.delayBounds(afterAttempt: 1), 500...1000)
        XCTAssertEqual(policy.delayBounds(afterAttempt: 3), 4500...9000)
        XCTAssertEqual(policy.delay(afterAttempt: 3, unit: 0), 4500)
        XCTAssertEqual(policy.delay(afterAttempt: 3, unit: 1), 9000)
        for _ in 0..<200 {
            XCTAssertTrue((4500...9000).contains(policy.delay(afterAttempt: 3)))
        }
        // A huge exponent is capped, never infinite.
        XCTAssertEqual(policy.delayBounds(afterAttempt: 10_000), 300_000...600_000)
    }

    func testWhatIsRetried() {
        let policy = RetryPolicy()
        XCTAssertTrue(policy.retries(status: .failed, verdict: .exited))
        XCTAssertTrue(policy.retries(status: .timedOut, verdict: .wallTimeout))
        XCTAssertTrue(policy.retries(status: .failed, verdict: .memoryLimit))
        XCTAssertFalse(policy.retries(status: .success, verdict: .exited))
        XCTAssertFalse(policy.retries(status: .cancelled, verdict: .cancelled))
        XCTAssertFalse(policy.retries(status: .failed, verdict: .interrupted), "interrupted only when listed")
        let listed = RetryPolicy(on: ["interrupted"])
        XCTAssertTrue(listed.retries(status: .failed, verdict: .interrupted))
        XCTAssertFalse(listed.retries(status: .failed, verdict: .exited), "FAILED not listed")
        let memory = RetryPolicy(on: ["memory_limit"])
        XCTAssertTrue(memory.retries(status: .failed, verdict: .memoryLimit))
        XCTAssertFalse(memory.retries(status: .failed, verdict: .signaled))
        XCTAssertFalse(RetryPolicy.retryable.contains("cancelled"))
    }
}
