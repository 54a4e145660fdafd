import Glibc

/// A cgroup file opened once and then read and written in place (`pread`/`pwrite` at offset 0),
/// for the files a run touches on its launch path and in its watch loop (counters, the
/// process list). Opening a cgroupfs file costs a path walk and a kernfs open — 20 to 30 µs
/// each here, most of an access — so a run cgroup keeps its own open, also while it waits to be
/// reused. Each read regenerates the file's contents (the kernel restarts its seq_file at
/// offset 0). Used by one thread at a time, as its `RunCgroup` is. Closed by `close()` or when
/// released.
final class KeptCgroupFile: @unchecked Sendable {
    let path: String
    private let flags: Int32
    private var fd: Int32 = -1

    /// `writable`: opened read-write (else read-only). Nothing is opened before first use.
    init(_ path: String, writable: Bool = false) {
        self.path = path
        flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC
    }

    deinit { close() }

    /// The descriptor, opened on first use; nil with errno set when the file cannot be opened.
    private func descriptor() -> Int32? {
        if fd < 0 { fd = open(path, flags) }
        return fd >= 0 ? fd : nil
    }

    /// The descriptor, opened now if it is not yet: for a file handed to another process
    /// (which gets a copy; this one stays open here).
    func openedDescriptor() throws(CgroupError) -> Int32 {
        guard let fd = descriptor() else { throw CgroupError(operation: "open", path: path, errno: errno) }
        return fd
    }

    /// The whole file, or nil when it cannot be opened or read.
    func readString() -> String? { readBytes().map { String(decoding: $0, as: UTF8.self) } }

    /// The whole file's bytes (a counter's fit in the first read), or nil.
    private func readBytes() -> [UInt8]? {
        guard let fd = descriptor() else { return nil }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 4096, off_t(bytes.count)) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return bytes
    }

    /// The file as one unsigned number.
    func readUInt() -> UInt64? { readBytes().flatMap { CgroupFile.number(utf8: $0[...]) } }

    /// The value of `key` in a "key value" file (memory.oom_control, memory.events, cpu.stat).
    func readKey(_ key: String) -> UInt64? { readString().flatMap { CgroupFile.value(of: key, in: $0) } }

    /// The pids of a cgroup.procs file.
    func pids() -> [pid_t] { CgroupFile.pidList(readString() ?? "") }

    /// Writes `value` (the kernel takes each write whole).
    func write(_ value: String) throws(CgroupError) {
        guard let fd = descriptor() else {
            throw CgroupError(operation: "open (to write \"\(value)\")", path: path, errno: errno)
        }
        let n = value.withCString { pwrite(fd, $0, strlen($0), 0) }
        if n < 0 { throw CgroupError(operation: "write \"\(value)\" to", path: path, errno: errno) }
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
}
