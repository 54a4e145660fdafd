import Foundation
import Glibc
import HumanText

/// The hook of output files: the sandbox's mount namespace held open from the start of a run
/// (an open namespace outlives its processes, its mounts with it), so that once the program
/// has ended — whatever the verdict, a kill included — the files of its working directory that
/// match the run's `outputs` can be read. They are read from a thread of its own that enters
/// that namespace (a thread can, once it has its own file-system information) and ends with
/// it: from the working directory down, every path component opened without following a
/// symbolic link and never across a mount, so nothing outside the working directory is ever
/// reached; only regular files are taken, up to `maxBytes` in all.
final class WorkdirCapture: @unchecked Sendable {
    private let mountNamespace: Int32

    /// The most directory entries looked at, and the deepest folder walked into.
    static let maxEntries = 100_000, maxDepth = 32
    /// The most skipped files reported.
    static let maxSkipped = 100

    /// Holds the mount namespace of the sandbox whose init is `initPID`; nil when it is gone.
    init?(initPID: pid_t) {
        let fd = open("/proc/\(initPID)/ns/mnt", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        mountNamespace = fd
    }

    deinit { close(mountNamespace) }

    /// The files matching `outputs` in `workdir`, and those skipped with why. Blocks its caller
    /// (a supervisor thread) until the reading thread is done.
    func collect(workdir: String, outputs: OutputCollection) -> (files: [CollectedFile], skipped: [SkippedFile]) {
        nonisolated(unsafe) var result: (files: [CollectedFile], skipped: [SkippedFile]) = ([], [])
        let done = DispatchSemaphore(value: 0)
        let namespace = mountNamespace
        let thread = Thread {
            result = Self.enterAndCollect(namespace: namespace, workdir: workdir, outputs: outputs)
            done.signal()
        }
        thread.name = "confine-outputs"
        thread.stackSize = 1 << 20
        thread.start()
        done.wait()
        return result
    }

    // MARK: On the reading thread

    // Glibc's Swift module lacks unshare and setns (they need _GNU_SOURCE): looked up by name.
    private typealias UnshareCall = @convention(c) (Int32) -> Int32
    private typealias NamespaceCall = @convention(c) (Int32, Int32) -> Int32
    private static let unshareCall: UnshareCall? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "unshare")
        .map { unsafeBitCast($0, to: UnshareCall.self) }
    private static let setnsCall: NamespaceCall? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns")
        .map { unsafeBitCast($0, to: NamespaceCall.self) }
    private static let cloneFS: Int32 = 0x0000_0200, cloneNewNS: Int32 = 0x0002_0000

    private static func enterAndCollect(namespace: Int32, workdir: String,
                                        outputs: OutputCollection) -> (files: [CollectedFile], skipped: [SkippedFile]) {
        func failed(_ what: String, _ code: Int32) -> ([CollectedFile], [SkippedFile]) {
            ([], [SkippedFile(path: "*", reason: "the working directory could not be read (\(what): \(ErrnoName.describe(code)))")])
        }
        guard let unshare = unshareCall, let setns = setnsCall else { return failed("setns", ENOSYS) }
        if unshare(cloneFS) != 0 { return failed("unshare(CLONE_FS)", errno) }
        if setns(namespace, cloneNewNS) != 0 { return failed("setns", errno) }
        var walk = Walk(outputs: outputs)
        let root = open(workdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if root < 0 { return failed("open \(workdir)", errno) }
        var info = stat()
        guard fstat(root, &info) == 0 else {
            close(root)
            return failed("stat \(workdir)", errno)
        }
        walk.device = info.st_dev
        walk.visit(directory: root, prefix: "", depth: 0)
        return (walk.files, walk.skipped)
    }

    /// The walk of the working directory: what matched, what was taken and skipped.
    private struct Walk {
        let outputs: OutputCollection
        var device: dev_t = 0
        var files: [CollectedFile] = []
        var skipped: [SkippedFile] = []
        var taken = 0
        var entries = 0

        init(outputs: OutputCollection) { self.outputs = outputs }

        func matches(_ path: String) -> Bool {
            outputs.patterns.contains { fnmatch($0, path, FNM_PATHNAME | FNM_PERIOD) == 0 }
        }

        /// Whether anything under the folder `path` could match (its path a prefix of a pattern's
        /// segments), so that folders no pattern reaches are not walked.
        func mayContainMatches(_ path: String) -> Bool {
            let depth = path.split(separator: "/").count
            return outputs.patterns.contains { pattern in
                let segments = pattern.split(separator: "/", omittingEmptySubsequences: false)
                guard segments.count > depth else { return false }
                return fnmatch(segments.prefix(depth).joined(separator: "/"), path, FNM_PATHNAME | FNM_PERIOD) == 0
            }
        }

        mutating func skip(_ path: String, _ reason: String) {
            if skipped.count < WorkdirCapture.maxSkipped { skipped.append(SkippedFile(path: path, reason: reason)) }
        }

        /// Visits a folder (taking `fd`, closed here).
        mutating func visit(directory fd: Int32, prefix: String, depth: Int) {
            guard let dir = fdopendir(fd) else {
                close(fd)
                return
            }
            defer { closedir(dir) }
            var names: [String] = []
            while names.count <= WorkdirCapture.maxEntries - entries, let entry = readdir(dir) {
                let name = withUnsafePointer(to: entry.pointee.d_name) {
                    $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                }
                if name != "." && name != ".." { names.append(name) }
            }
            for name in names.sorted() {
                entries += 1
                if entries > WorkdirCapture.maxEntries {
                    skip(prefix + name, "not looked at: the working directory has more than \(WorkdirCapture.maxEntries) entries")
                    return
                }
                let path = prefix + name
                var info = stat()
                guard fstatat(dirfd(dir), name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                let kind = info.st_mode & S_IFMT
                if kind == S_IFDIR {
                    if matches(path) { skip(path, "a directory, not a regular file (give \(path)/* for its files)") }
                    guard depth < WorkdirCapture.maxDepth, info.st_dev == device, mayContainMatches(path) else { continue }
                    let child = openat(dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    if child >= 0 { visit(directory: child, prefix: path + "/", depth: depth + 1) }
                    continue
                }
                guard matches(path) else { continue }
                switch kind {
                case S_IFREG: take(dirfd(dir), name, path: path)
                case S_IFLNK: skip(path, "a symbolic link (never followed)")
                default: skip(path, "not a regular file")
                }
            }
        }

        /// Reads a regular file within what is left of `maxBytes`.
        mutating func take(_ directory: Int32, _ name: String, path: String) {
            let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else {
                skip(path, "unreadable (\(ErrnoName.describe(errno)))")
                return
            }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
                skip(path, "not a regular file")
                return
            }
            let size = Int(info.st_size), left = outputs.maxBytes - taken
            guard size <= left else {
                skip(path, "too large: \(size) bytes, \(max(0, left)) of max_artifact_bytes (\(outputs.maxBytes)) left")
                return
            }
            var contents = [UInt8](repeating: 0, count: size)
            var done = 0
            while done < size {
                let n = contents.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, size - done) }
                if n < 0, errno == EINTR { continue }
                if n <= 0 { break }
                done += n
            }
            contents.removeLast(size - done)
            taken += done
            files.append(CollectedFile(path: path, contents: contents))
        }
    }
}
