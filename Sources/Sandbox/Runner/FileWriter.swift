import Glibc

/// Writing small files (procfs) with the errno of a failure, and warnings on stderr.
enum FileWriter {
    /// nil on success, else the errno.
    static func write(_ path: String, _ content: String) -> Int32? {
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        let n = content.withCString { Glibc.write(fd, $0, strlen($0)) }
        return n < 0 ? errno : nil
    }

    static func warn(_ message: String) {
        let line = message + "\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
    }
}
