import CSandbox
import Glibc

/// A run's stdin, fed from the bytes given (non-blocking, 64 KiB at a time) and closed at
/// their end, when the program closes its end, or on a write error. Empty bytes: closed at once.
struct StdinFeeder {
    private(set) var fd: Int32
    private let bytes: [UInt8]
    private var offset = 0

    init(fd: Int32, bytes: [UInt8]) {
        self.fd = fd
        self.bytes = bytes
        if bytes.isEmpty { close() }
    }

    /// Writes what the pipe takes after poll said `revents`.
    mutating func feed(revents: Int16) {
        guard fd >= 0 else { return }
        guard revents & Int16(POLLOUT) != 0 else {
            close()  // POLLERR/POLLHUP: the program closed its stdin
            return
        }
        let (n, writeErrno) = bytes.withUnsafeBytes { raw in
            (write(fd, raw.baseAddress! + offset, min(65536, raw.count - offset)), errno)
        }
        if n > 0 { offset += n }
        if offset >= bytes.count || (n < 0 && writeErrno != EAGAIN && writeErrno != EINTR) { close() }
    }

    mutating func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
}

/// Init's report pipe: fixed-size `cs_report` records, however the reads cut them.
struct ReportReader {
    let fd: Int32
    /// The pipe is at its end (init has exited), or there is none (bare runs: fd -1).
    private(set) var eof: Bool
    private var pending: [UInt8] = []

    init(fd: Int32) {
        self.fd = fd
        eof = fd < 0
    }

    /// Reads what is there and returns the whole records it completes.
    mutating func read(scratch: inout [UInt8]) -> [cs_report] {
        let (n, readErrno) = scratch.withUnsafeMutableBytes { (Glibc.read(fd, $0.baseAddress, $0.count), errno) }
        guard n > 0 else {
            if n == 0 || (readErrno != EINTR && readErrno != EAGAIN) { eof = true }
            return []
        }
        pending.append(contentsOf: scratch[0..<n])
        var records: [cs_report] = []
        let size = MemoryLayout<cs_report>.size
        while pending.count >= size {
            records.append(pending.withUnsafeBytes { $0.loadUnaligned(as: cs_report.self) })
            pending.removeFirst(size)
        }
        return records
    }
}
