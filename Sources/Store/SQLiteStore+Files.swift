import Foundation

/// The store's files at rest: private whatever the umask.
extension SQLiteStore {
    /// The database and what SQLite writes beside it (`-wal`, `-shm`, which SQLite creates with
    /// the database's own mode) are private whatever the umask of whoever opens it: the file is
    /// created 0600 (and an older one narrowed to 0600), in a folder created 0700. An existing
    /// folder open to others is narrowed to 0700 when it is Confine's own (`FolderPrivacy`);
    /// a shared one (such as /var/lib) is left as it is, and the returned words say so.
    static func makePrivate(path: String, folder: String) throws(StoreError) -> String? {
        var note: String?
        if FileManager.default.fileExists(atPath: folder) {
            note = try FolderPrivacy.narrow(folder, ownFiles: FolderPrivacy.storeFiles(databasePath: path))
        } else {
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
        return note
    }
}

/// Narrowing an existing folder to 0700 — only when it is Confine's own: owned by this
/// process's user, not a sticky shared folder (/tmp), and holding nothing but Confine's files.
/// Any other folder open to others is left alone (chmod on /var/lib or a home would break
/// what else lives there); the caller says so, naming the folder and what else is in it.
enum FolderPrivacy {
    /// What the store and the server keep beside a database: the file, SQLite's `-wal`,
    /// `-shm` and `-journal`, the disk reserve, the change sentinels (`-tokens`, `-deletions`),
    /// the admin token and the secrets key.
    static func storeFiles(databasePath: String) -> Set<String> {
        let name = (databasePath as NSString).lastPathComponent
        return Set(["", "-wal", "-shm", "-journal", "-reserve", "-tokens", "-deletions"].map { name + $0 } + ["admin.token", "secrets.key"])
    }

    /// nil when the folder is private (already, or narrowed now), else why it was left open.
    static func narrow(_ folder: String, ownFiles: Set<String>) throws(StoreError) -> String? {
        var info = stat()
        guard stat(folder, &info) == 0 else {
            throw StoreError.unavailable("cannot read the database folder \(folder): \(String(cString: strerror(errno)))")
        }
        let open = info.st_mode & 0o077
        if open == 0 { return nil }
        let mode = String(info.st_mode & 0o7777, radix: 8)
        if info.st_uid != geteuid() {
            return "the database folder \(folder) (mode \(mode)) is not this user's; left as it is (the database files are 0600)"
        }
        if info.st_mode & S_ISVTX != 0 {
            return "the database folder \(folder) (mode \(mode)) is a shared sticky folder; left as it is (the database files are 0600)"
        }
        let others = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { !ownFiles.contains($0) }.sorted()
        if !others.isEmpty {
            let shown = others.prefix(3).joined(separator: ", ") + (others.count > 3 ? ", …" : "")
            return "the database folder \(folder) (mode \(mode)) also holds \(shown); left as it is (the database files are 0600) — give the database a folder of its own to have it 0700"
        }
        if chmod(folder, info.st_mode & 0o7700) != 0 {
            throw StoreError.unavailable("cannot make the database folder \(folder) private (chmod 700): \(String(cString: strerror(errno)))")
        }
        return nil
    }
}
