import Foundation

/// Starts child processes for the tests one at a time. Foundation's `Process.run()` on Linux
/// crashed twice here (memcpy, a bad pointer) while other tests' threads started processes at
/// the same moment; every test that starts a process goes through this lock.
public enum ProcessLaunch {
    private static let lock = NSLock()

    /// `process.run()`, never at the same time as another launch of the test process.
    public static func run(_ process: Process) throws {
        lock.lock()
        defer { lock.unlock() }
        try process.run()
    }
}
