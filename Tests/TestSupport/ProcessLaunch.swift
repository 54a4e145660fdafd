import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Starts child processes for the tests one at a time, around a bug of Foundation's
/// `Process.run()` on Linux that crashed the test process now and then (SIGSEGV in memcpy).
///
/// `Process.run()` lists `/proc/self/fd` with opendir/readdir and copies each entry as a whole
/// `struct dirent` (280 bytes) even when the entry is shorter (swift-corelibs-foundation PR
/// 5472, not in this toolchain): once the test process holds more than ~1,350 descriptors an
/// entry ends readdir's 32 KiB buffer and the copy reads up to 256 bytes past it. That is
/// harmless unless glibc carved the buffer from the top of a malloc arena, right below memory
/// that is not mapped. So a 64 KiB block is freed just before each launch, with a small block
/// after it holding it off the top: readdir's buffer is carved from it (a free chunk that
/// fits always comes before the top), and what the copy over-reads is the rest of that block.
/// (Setting glibc's mmap threshold does not help: a request above it is still carved from
/// the top when the top has room.) The lock keeps one launch at a time.
public enum ProcessLaunch {
    private static let lock = NSLock()

    /// `process.run()`, never at the same time as another launch of the test process.
    public static func run(_ process: Process) throws {
        lock.lock()
        defer { lock.unlock() }
        let room = malloc(64 << 10)
        let fence = malloc(64)
        free(room)
        defer { free(fence) }
        try process.run()
    }
}
