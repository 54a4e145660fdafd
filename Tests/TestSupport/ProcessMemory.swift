import Foundation
import Glibc

/// Another process's memory, read as root through /proc/PID/maps and /proc/PID/mem.
public struct ProcessMemory: Sendable {
    /// The process read.
    public let pid: Int32

    public init(pid: Int32) { self.pid = pid }

    /// For each needle, whether a readable mapping of the process holds it. Throws when the
    /// process cannot be read at all (gone, or not permitted). Blocks: see `holding`.
    public func find(_ needles: [[UInt8]]) throws -> [Bool] {
        let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
        let fd = open("/proc/\(pid)/mem", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        let longest = needles.map(\.count).max() ?? 0
        var found = needles.map { _ in false }
        var readAny = false
        // Chunks overlap by the longest needle so that nothing is missed at a boundary; a chunk
        // that cannot be read (a guard page) is skipped, not the rest of the mapping.
        let chunk = 256 << 10
        var buffer = [UInt8](repeating: 0, count: chunk + longest)
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, fields[1].hasPrefix("r") else { continue }
            if fields.count >= 6, fields[5] == "[vvar]" || fields[5] == "[vsyscall]" { continue }
            let bounds = fields[0].split(separator: "-").compactMap { UInt64($0, radix: 16) }
            guard bounds.count == 2, bounds[1] > bounds[0] else { continue }
            var offset = bounds[0]
            while offset < bounds[1] {
                let length = Int(min(UInt64(chunk + longest), bounds[1] - offset))
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, off_t(offset)) }
                if n > 0 {
                    readAny = true
                    buffer.withUnsafeBytes { bytes in
                        let read = UnsafeRawBufferPointer(rebasing: bytes[0..<n])
                        for (i, needle) in needles.enumerated() where !found[i] { found[i] = Self.occurs(needle, in: read) }
                    }
                    if !found.contains(false) { return found }
                }
                offset += UInt64(chunk)
            }
        }
        guard readAny else { throw POSIXError(.EIO) }
        return found
    }

    /// `find`, on a thread of its own (a process's whole memory takes a while to read: never
    /// on the cooperative pool, whose few threads other tests' timers need). nil when unreadable.
    public static func holding(_ pid: Int32, _ needles: [[UInt8]]) async -> [Bool]? {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: try? ProcessMemory(pid: pid).find(needles)) }
            thread.start()
        }
    }

    private static func occurs(_ needle: [UInt8], in haystack: UnsafeRawBufferPointer) -> Bool {
        guard let first = needle.first, haystack.count >= needle.count, let base = haystack.baseAddress else { return false }
        var p = base
        let end = base + (haystack.count - needle.count + 1)
        while p < end, let hit = memchr(p, Int32(first), end - p) {
            if needle.withUnsafeBytes({ memcmp(hit, $0.baseAddress!, needle.count) }) == 0 { return true }
            p = UnsafeRawPointer(hit) + 1
        }
        return false
    }

    /// Children of `parent` that are the init (pid 1) of a pid namespace: sandboxes' inits.
    public static func sandboxInits(of parent: Int32) -> [Int32] {
        children(of: parent).filter { $0.nspid.count >= 2 && $0.nspid.last == "1" }.map(\.pid)
    }

    /// Children of `parent` with their NSpid lists (one entry: in this pid namespace).
    public static func children(of parent: Int32) -> [(pid: Int32, nspid: [Substring])] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.compactMap { pid in
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
            var ppid: Int32?
            var nspid: [Substring] = []
            for line in status.split(separator: "\n") {
                if line.hasPrefix("PPid:") { ppid = Int32(line.dropFirst(5).trimmingCharacters(in: .whitespaces)) }
                if line.hasPrefix("NSpid:") { nspid = line.dropFirst(6).split(whereSeparator: \.isWhitespace) }
            }
            return ppid == parent ? (pid, nspid) : nil
        }
    }

    /// A field of /proc/PID/status in kB ("VmRSS").
    public static func statusKB(_ pid: Int32, _ field: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.dropFirst(field.count + 1).split(whereSeparator: \.isWhitespace).first ?? "")
        }
        return nil
    }
}
