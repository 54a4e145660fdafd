import Foundation

/// How much slower than real hardware this test run's machine is: `CONFINE_TEST_TIME_SCALE`
/// (a number ≥ 1, default 1). `make test-cgroup2` sets it when the guest is emulated (TCG),
/// where every instruction costs several times more, so that the few tests whose programs
/// must finish within a CPU-time or short wall-clock limit scale those limits, and still prove
/// what they prove (caps, counts, verdicts) instead of being skipped.
public enum TestTimeScale {
    public static let factor: Int = {
        guard let text = ProcessInfo.processInfo.environment["CONFINE_TEST_TIME_SCALE"], let n = Int(text), n >= 1 else { return 1 }
        return n
    }()

    /// `milliseconds` × the factor.
    public static func scaled<T: BinaryInteger>(_ milliseconds: T) -> T { milliseconds * T(factor) }
}
