import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Files that hold a credential (the first admin token, the secrets key): created only if
/// absent, mode 0600 from the first byte (never widened after the fact), never through a
/// symbolic link; read only if no one but the owner can read them.
public enum SecretFile {
    /// Creates `path` (and its folder, mode 0700 when new) holding `contents`; fails if it exists.
    public static func create(_ path: String, contents: String) throws(SecretBoxError) {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty, !FileManager.default.fileExists(atPath: folder) {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw .file("cannot create \(folder): \(error.localizedDescription)")
            }
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .file("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // The umask may have narrowed the mode further; it can never have widened it.
        let bytes = Array(contents.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw .file("cannot write \(path): \(reason)")
        }
    }

    /// The contents of `path`, or nil when it does not exist. Refuses a file others can read or
    /// write, and a symbolic link.
    public static func read(_ path: String) throws(SecretBoxError) -> String? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw .file("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .file("cannot stat \(path): \(String(cString: strerror(errno)))") }
        if info.st_mode & 0o077 != 0 {
            throw .file("\(path) is readable or writable by others (mode \(String(info.st_mode & 0o777, radix: 8))); "
                        + "chmod 600 \(path)")
        }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw .file("cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            data.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: data, as: UTF8.self)
    }
}
