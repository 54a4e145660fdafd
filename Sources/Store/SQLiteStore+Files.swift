import Foundation

/// The store's files at rest: private whatever the umask.
extension SQLiteStore {
    /// The database and what SQLite writes beside it (`-wal`, `-shm`, which SQLite creates with
    /// the database's own mode) are private whatever the umask of whoever opens it: the file is
    /// created 0600 (and an older one narrowed to 0600), in a folder created 0700. An existing
    /// folder is left as it is (it may be shared, such as /var/lib), but never a new one.
    static func makePrivate(path: String, folder: String) throws(StoreError) {
        if !FileManager.default.fileExists(atPath: folder) {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw StoreError.unavailable("cannot create the database folder \(folder): \(error.localizedDescription)")
            }
        }
        for file in [path, path + "-wal", path + "-shm"] {
            let fd = open(file, file == path ? O_RDWR | O_CREAT | O_CLOEXEC : O_RDWR | O_CLOEXEC, 0o600)
            if fd < 0 {
                let code = errno
                // Absent beside files, or a file this process may only read (SQLite says more).
                if (file != path && code == ENOENT) || code == EACCES || code == EROFS { continue }
                throw StoreError.unavailable("cannot open the database file \(file): \(String(cString: strerror(code)))")
            }
            defer { close(fd) }
            var info = stat()
            if fstat(fd, &info) == 0, info.st_mode & 0o077 != 0, fchmod(fd, info.st_mode & 0o700) != 0 {
                let code = errno
                throw StoreError.unavailable("cannot make \(file) private (chmod 600): \(String(cString: strerror(code)))")
            }
        }
    }
}
