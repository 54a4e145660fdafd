import API
import ArgumentParser
import Foundation
import Glibc
import HumanText
import Sandbox
import Store

/// `confine backup FILE`: an online, consistent copy of the SQLite database, safe while
/// `confine serve` runs (SQLite's online backup API, not a file copy).
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the database, consistently, even while the server runs.",
        discussion: """
            The database is the one `confine serve` uses: --database, else CONFINE_DATABASE, else \
            the database key of --config, else ./var/confine.sqlite. It is only read (a missing \
            database is refused, never created) and copied with SQLite's online backup, \
            a snapshot that does not stop the server. The copy is written beside FILE first, \
            checked with PRAGMA integrity_check, and only then takes FILE's name; it is a single \
            self-contained file with the database's permissions.

            Exit status: 0 done; 64 bad usage (FILE exists without --force, FILE is the \
            database, the database is PostgreSQL: use pg_dump); 74 the database cannot be read or the copy cannot be written or checked \
            (the path and the reason are printed); 78 an invalid configuration.
            """
    )

    @Argument(help: ArgumentHelp("Where to write the copy.", valueName: "FILE"))
    var file: String

    @Option(name: .long, help: "The SQLite database (default: as `confine serve`, ./var/confine.sqlite).")
    var database: String?

    @Option(name: .long, help: "A YAML configuration file (its database key).")
    var config: String?

    @Flag(name: .long, help: "Replace FILE if it exists.")
    var force = false

    func validate() throws {
        if file.isEmpty { throw ValidationError("give the file to write the copy to, e.g. confine backup /var/backups/confine.sqlite") }
    }

    func run() throws {
        do {
            let summary = try backup()
            print("backup: \(summary.source) -> \(summary.target) (\(summary.jobs) jobs, \(summary.executions) executions, \(summary.size), integrity ok)")
        } catch {
            FileHandle.standardError.write(Data("confine: \(error.description)\n".utf8))
            throw ExitCode(error.exitCode)
        }
    }

    /// What one backup copied.
    struct Summary {
        var source: String
        var target: String
        var jobs: Int
        var executions: Int
        var size: String
    }

    private func backup() throws(BackupError) -> Summary {
        var environment = ProcessInfo.processInfo.environment
        if let database { environment["CONFINE_DATABASE"] = database }
        let source: String
        do {
            source = try ServerConfiguration.load(file: config, environment: environment).database
        } catch {
            throw .configuration(error.description)
        }
        if case .postgres(let address) = try? DatabaseLocation.parse(source) {
            throw .usage("""
                the database is PostgreSQL (\(address)): back it up with PostgreSQL's own tools, e.g. \
                pg_dump --format=custom --file=\(file) '\(address.urlWithoutPassword)' (give the password through PGPASSWORD or ~/.pgpass), \
                and restore with pg_restore; confine backup copies SQLite files only
                """)
        }

        var sourceInfo = stat()
        guard stat(source, &sourceInfo) == 0 else {
            let err = errno
            throw .failed("database \(source): \(ErrnoName.describe(err))\(err == ENOENT ? "; nothing to back up (give --database or --config)" : "")")
        }
        guard (sourceInfo.st_mode & S_IFMT) == S_IFREG else {
            throw .failed("database \(source): not a regular file")
        }

        var targetInfo = stat()
        if stat(file, &targetInfo) == 0 {
            if targetInfo.st_dev == sourceInfo.st_dev && targetInfo.st_ino == sourceInfo.st_ino {
                throw .usage("\(file) is the database itself; write the copy elsewhere")
            }
            if (targetInfo.st_mode & S_IFMT) == S_IFDIR {
                throw .usage("\(file) is a folder; give the path of the copy, e.g. \(file)/confine.sqlite")
            }
            if !force { throw .usage("\(file) already exists; pass --force to replace it") }
        }
        let targetURL = URL(fileURLWithPath: file)
        let folder = targetURL.deletingLastPathComponent().path
        var folderInfo = stat()
        let folderErr = stat(folder, &folderInfo) == 0 ? ((folderInfo.st_mode & S_IFMT) == S_IFDIR ? 0 : ENOTDIR) : errno
        if folderErr != 0 {
            throw .failed("cannot write \(file): its folder \(folder): \(ErrnoName.describe(folderErr))")
        }

        // Written beside the target, published only when complete and checked.
        let partial = folder + "/." + targetURL.lastPathComponent + ".partial-\(getpid())"
        Self.removeDatabaseFiles(partial)
        let counts: (jobs: Int, executions: Int)
        do {
            counts = try SQLiteStore.backup(from: source, to: partial)
        } catch {
            Self.removeDatabaseFiles(partial)
            throw .failed("backup of \(source) into \(file): \(error.description)")
        }
        _ = chmod(partial, sourceInfo.st_mode & 0o777)
        if force {
            if rename(partial, file) != 0 {
                let err = errno
                Self.removeDatabaseFiles(partial)
                throw .failed("cannot write \(file): rename: \(ErrnoName.describe(err))")
            }
        } else if link(partial, file) == 0 {
            unlink(partial)
        } else {
            let err = errno
            if err == EEXIST {
                Self.removeDatabaseFiles(partial)
                throw .usage("\(file) appeared during the backup; pass --force to replace it")
            }
            // A filesystem without hard links: the target was checked absent above.
            if rename(partial, file) != 0 {
                let renameErr = errno
                Self.removeDatabaseFiles(partial)
                throw .failed("cannot write \(file): \(ErrnoName.describe(renameErr))")
            }
        }
        let dir = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            fsync(dir)
            close(dir)
        }
        var written = stat()
        let bytes = stat(file, &written) == 0 ? Double(written.st_size) : 0
        return Summary(source: source, target: file, jobs: counts.jobs, executions: counts.executions,
                       size: String(format: bytes < Double(1 << 20) ? "%.2f MiB" : "%.1f MiB", bytes / Double(1 << 20)))
    }

    /// Removes a database file and the journal files SQLite may have left beside it.
    private static func removeDatabaseFiles(_ path: String) {
        for suffix in ["", "-journal", "-wal", "-shm"] { unlink(path + suffix) }
    }
}

/// Why `confine backup` failed, and its exit status.
enum BackupError: Error, CustomStringConvertible {
    /// A command line that cannot be honoured as given (64, EX_USAGE).
    case usage(String)
    /// The database could not be read, or the copy written or checked (74, EX_IOERR).
    case failed(String)
    /// An invalid --config or CONFINE_* value (78, EX_CONFIG).
    case configuration(String)

    var description: String {
        switch self {
        case .usage(let message), .failed(let message), .configuration(let message): return message
        }
    }

    var exitCode: Int32 {
        switch self {
        case .usage: return 64
        case .failed: return 74
        case .configuration: return 78
        }
    }
}
