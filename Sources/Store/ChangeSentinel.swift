import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A file beside the database rewritten after every change of one kind, by any process using
/// the database: `<database>-tokens` after a token is made or revoked (by the server or by
/// `confine token --database` in another process), `<database>-deletions` after executions are
/// deleted (retention, a job deleted with its executions). Its identity and modification time
/// are that kind's version: a server may keep what it read in memory (verified tokens,
/// finished executions' answers) while the version stays the same, and must read it again once
/// it changes. Reading the version is one `stat`, no SQL. Touched after the change committed,
/// so whatever was read before the touch is dropped at the next version check.
struct ChangeSentinel: Sendable {
    let path: String
    /// The last version read, with its text: the text is written again only when the file
    /// changed (it is read at every request).
    private let last = LastVersion()

    private final class LastVersion: Sendable {
        let value = Mutex<(stamp: [Int], text: String)?>(nil)
    }

    /// The sentinel `<databasePath><suffix>` (`-tokens`, `-deletions`).
    init(databasePath: String, suffix: String) { path = databasePath + suffix }

    /// The version now: inode, size and modification time in nanoseconds; nil when the file
    /// does not exist yet or cannot be read (then nothing may be trusted from memory).
    func version() -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let stamp = [Int(bitPattern: UInt(info.st_ino)), Int(info.st_size), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec)]
        return last.value.withLock { last in
            if let last, last.stamp == stamp { return last.text }
            let text = "\(info.st_ino):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
            last = (stamp, text)
            return text
        }
    }

    /// Marks a change. Written as a new file renamed over the old one (a new inode each time, so
    /// two changes within one tick of the clock still differ).
    func touch() {
        let temporary = path + ".\(getpid()).\(UInt64.random(in: 0 ... .max))"
        let stamp = "\(Date().timeIntervalSince1970) \(getpid())\n"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(stamp.utf8),
                                             attributes: [.posixPermissions: 0o600]) else { return }
        if rename(temporary, path) != 0 { unlink(temporary) }
    }
}
