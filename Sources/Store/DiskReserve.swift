import Foundation
import Glibc
import Synchronization

/// Room held back on the database's disk for the day it fills: a file of `bytes` allocated
/// beside the database (`<database>-reserve`).
///
/// What it promises:
/// - when a write finds the disk full, `release()` deletes the file, so that executions
///   already running can still be finished in the store while new data is refused;
/// - `admits()` says whether new data may be taken: yes while the reserve is held; otherwise
///   only once the disk has the reserve's room twice over again, when it takes the reserve back
///   (so the full state ends by itself when space returns, without a restart, and does not
///   flap on the room the release itself freed);
/// - with `bytes` 0 there is no file; the full state then ends once `minimumFree` is free.
///
/// Cheap to ask: one `statvfs` while full, nothing while held.
final class DiskReserve: Sendable {
    let path: String
    let bytes: Int
    /// Free room (bytes) that ends the full state when there is no reserve file.
    static let minimumFree = 1 << 20
    private let held = Mutex(false)

    init(databasePath: String, bytes: Int) {
        self.path = databasePath + "-reserve"
        self.bytes = max(0, bytes)
        if self.bytes == 0 {
            unlink(path)
            held.withLock { $0 = true }
        } else {
            _ = take()
        }
    }

    /// Whether the reserve is in place (the disk is not full, as far as the store knows).
    var isHeld: Bool { held.withLock { $0 } }

    /// The disk was found full: hand the reserve's room to what must still be written.
    func release() {
        held.withLock { isHeld in
            guard isHeld else { return }
            isHeld = false
            if bytes > 0 { unlink(path) }
        }
    }

    /// Whether new data may be written: the reserve is held, or the disk has room again and
    /// the reserve was just taken back.
    func admits() -> Bool {
        if isHeld { return true }
        guard let free = freeBytes(), free >= (bytes == 0 ? Self.minimumFree : 2 * bytes) else { return false }
        return take()
    }

    /// Free bytes (for an unprivileged writer) on the database's filesystem.
    func freeBytes() -> Int? {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var stats = statvfs()
        guard statvfs(folder, &stats) == 0 else { return nil }
        return Int(stats.f_bavail) * Int(stats.f_frsize)
    }

    /// Allocates the file (really: blocks, not a sparse file). False when the disk lacks the
    /// room; nothing is left behind then.
    private func take() -> Bool {
        held.withLock { isHeld in
            if isHeld { return true }
            if bytes == 0 {
                isHeld = true
                return true
            }
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var result = posix_fallocate(fd, 0, off_t(bytes))
            if result == EOPNOTSUPP || result == EINVAL { result = Self.writeZeros(fd, bytes) }
            guard result == 0 else {
                unlink(path)
                return false
            }
            isHeld = true
            return true
        }
    }

    /// For filesystems without fallocate: writes the zeros themselves. 0, or the errno.
    private static func writeZeros(_ fd: Int32, _ count: Int) -> Int32 {
        let chunk = [UInt8](repeating: 0, count: 1 << 16)
        var left = count
        while left > 0 {
            let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, min(left, $0.count)) }
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            left -= n
        }
        return 0
    }
}
