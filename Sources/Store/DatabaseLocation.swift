import Foundation

/// Where the database is: a SQLite file (a path, the embedded default) or a PostgreSQL server
/// (`postgres://` or `postgresql://` URL) shared by any number of `confine serve` nodes.
///
/// Printed (`description`), a PostgreSQL URL never shows its password: `postgres://user:***@host/db`.
/// Every log line, answer and error that names the database uses this type, never the raw text.
public enum DatabaseLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(PostgresAddress)

    /// Reads `database:` / `CONFINE_DATABASE` / `--database`: a URL when it starts with
    /// `postgres://` or `postgresql://` (any case), else a file path.
    public static func parse(_ text: String) throws(DatabaseLocationError) -> DatabaseLocation {
        let lowered = text.lowercased()
        if lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://") {
            return .postgres(try PostgresAddress(url: text))
        }
        if let colon = text.range(of: "://") {
            let scheme = String(text[..<colon.lowerBound])
            throw DatabaseLocationError(text: "\(scheme)://…", reason: """
                unknown database scheme "\(scheme)"; give a SQLite file path or a postgres://USER@HOST/DBNAME URL
                """)
        }
        guard !text.isEmpty else {
            throw DatabaseLocationError(text: "", reason: "empty; give a SQLite file path or a postgres://USER@HOST/DBNAME URL")
        }
        return .sqlite(path: text)
    }

    /// The location as it may be shown: a path as it is, a URL with its password replaced by `***`.
    public var description: String {
        switch self {
        case .sqlite(let path): return path
        case .postgres(let address): return address.description
        }
    }

    /// The folder where a node keeps its own files (`admin.token`, `secrets.key`): the SQLite
    /// file's folder, or `./var` (where SQLite would be by default) for a PostgreSQL server.
    public var stateFolder: String {
        switch self {
        case .sqlite(let path):
            let folder = (path as NSString).deletingLastPathComponent
            return folder.isEmpty ? "." : folder
        case .postgres:
            return "./var"
        }
    }

    /// The SQLite file, or nil for a PostgreSQL server.
    public var sqlitePath: String? {
        if case .sqlite(let path) = self { return path }
        return nil
    }
}

/// A database location that cannot be used, with why (the text shown with its password hidden).
public struct DatabaseLocationError: Error, CustomStringConvertible, Equatable {
    /// The location as given, its password replaced by `***`.
    public var text: String
    public var reason: String

    public var description: String { text.isEmpty ? "database: \(reason)" : "database \(text): \(reason)" }
}

/// A PostgreSQL server and database, as libpq writes its URLs:
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME[?sslmode=…]`, or over a unix socket
/// `postgres://USER@localhost:5432/DB?host=/var/run/postgresql` (the `host` query names the
/// socket's folder, the port names its file `.s.PGSQL.PORT`).
public struct PostgresAddress: Sendable, Equatable, CustomStringConvertible {
    /// libpq's `sslmode`s.
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var user: String
    public var password: String?
    /// The TCP host ("localhost" when only a socket folder is given).
    public var host: String
    public var port: Int
    public var database: String
    /// The folder of the unix socket (`?host=/path`), nil for TCP.
    public var socketFolder: String?
    public var sslMode: SSLMode
    /// `application_name` and other query parameters are accepted and ignored; these are the
    /// ones kept.
    public static let knownParameters: Set<String> = ["host", "port", "sslmode", "application_name", "connect_timeout", "user",
                                                      "password", "dbname"]

    /// The socket file when connecting over a unix socket.
    public var socketPath: String? { socketFolder.map { "\($0)/.s.PGSQL.\(port)" } }

    public init(user: String, password: String? = nil, host: String = "localhost", port: Int = 5432, database: String,
                socketFolder: String? = nil, sslMode: SSLMode = .prefer) {
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.database = database
        self.socketFolder = socketFolder
        self.sslMode = sslMode
    }

    /// Parses a `postgres://` or `postgresql://` URL; every refusal names what is wrong, with
    /// the password hidden.
    public init(url text: String) throws(DatabaseLocationError) {
        var url = try URLPieces(text)
        try url.takeQuery()
        try url.takeDatabase()
        try url.takeUserInfo()
        try url.takeHostAndPort()
        try url.applyQuery()
        try url.checkComplete()
        self.init(user: url.user, password: url.password, host: url.host, port: url.port, database: url.database,
                  socketFolder: url.socket, sslMode: url.mode)
    }

    /// A postgres URL taken apart, piece by piece from its end (the query, the database, the
    /// user information, the host and port), each decoded; the steps of `init(url:)`. Errors
    /// show the URL with its password hidden.
    private struct URLPieces {
        let shown: String
        /// What is left to read.
        var rest: String
        var query: [(String, String)] = []
        var database = "", user = "", password: String?
        var host = "", port = 5432, socket: String?
        var mode = SSLMode.prefer

        init(_ text: String) throws(DatabaseLocationError) {
            shown = PostgresAddress.redact(text)
            guard let schemeEnd = text.range(of: "://") else { throw DatabaseLocationError(text: shown, reason: "not a postgres:// URL") }
            rest = String(text[schemeEnd.upperBound...])
        }

        func fail(_ reason: String) -> DatabaseLocationError { DatabaseLocationError(text: shown, reason: reason) }

        func decoded(_ text: some StringProtocol, _ what: String) throws(DatabaseLocationError) -> String {
            guard let value = String(text).removingPercentEncoding else { throw fail("bad percent-encoding in \(what)") }
            return value
        }

        func port(_ text: some StringProtocol) throws(DatabaseLocationError) -> Int {
            guard let p = Int(text), (1...65535).contains(p) else { throw fail("the port must be a number from 1 to 65535") }
            return p
        }

        /// `?key=value&…`, kept in order and applied last.
        mutating func takeQuery() throws(DatabaseLocationError) {
            guard let mark = rest.firstIndex(of: "?") else { return }
            for pair in rest[rest.index(after: mark)...].split(separator: "&", omittingEmptySubsequences: true) {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = try decoded(parts[0], "\"\(parts[0])\"")
                query.append((key, try decoded(parts.count > 1 ? parts[1] : "", "the value of \(key)")))
            }
            rest = String(rest[..<mark])
        }

        /// `/DBNAME`.
        mutating func takeDatabase() throws(DatabaseLocationError) {
            guard let slash = rest.firstIndex(of: "/") else { return }
            database = try decoded(rest[rest.index(after: slash)...], "the database name")
            rest = String(rest[..<slash])
        }

        /// `USER[:PASSWORD]@`.
        mutating func takeUserInfo() throws(DatabaseLocationError) {
            guard let at = rest.lastIndex(of: "@") else { return }
            let userInfo = rest[..<at]
            rest = String(rest[rest.index(after: at)...])
            if let colon = userInfo.firstIndex(of: ":") {
                user = try decoded(userInfo[..<colon], "the user or password")
                password = try decoded(userInfo[userInfo.index(after: colon)...], "the user or password")
            } else {
                user = try decoded(userInfo, "the user")
            }
        }

        /// `HOST[:PORT]`, `[IPv6][:PORT]`.
        mutating func takeHostAndPort() throws(DatabaseLocationError) {
            host = rest
            if rest.hasPrefix("[") {
                guard let close = rest.firstIndex(of: "]") else { throw fail("an IPv6 host needs its closing ]") }
                host = String(rest[rest.index(after: rest.startIndex)..<close])
                let after = rest[rest.index(after: close)...]
                if after.hasPrefix(":") {
                    port = try port(after.dropFirst())
                } else if !after.isEmpty {
                    throw fail("unexpected \"\(after)\" after the host")
                }
            } else if let colon = rest.lastIndex(of: ":") {
                host = String(rest[..<colon])
                port = try port(rest[rest.index(after: colon)...])
            }
            host = try decoded(host, "the host")
        }

        /// The query's parameters, as libpq reads them; an unknown one is an error.
        mutating func applyQuery() throws(DatabaseLocationError) {
            for (key, value) in query {
                switch key {
                case "host":
                    if value.hasPrefix("/") { socket = value } else if !value.isEmpty { host = value }
                case "port":
                    port = try port(value)
                case "sslmode":
                    guard let m = SSLMode(rawValue: value) else {
                        throw fail("sslmode \"\(value)\" is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    mode = m
                case "user": user = value
                case "password": password = value
                case "dbname": database = value
                case "application_name", "connect_timeout": break
                default:
                    throw fail("unknown parameter \"\(key)\" (known: \(PostgresAddress.knownParameters.sorted().joined(separator: ", ")))")
                }
            }
        }

        /// A socket folder given as the host; the user, the database and a host or socket present.
        mutating func checkComplete() throws(DatabaseLocationError) {
            if host.hasPrefix("/") {
                // libpq also takes the socket folder as the host, percent-encoded.
                socket = host
                host = "localhost"
            }
            guard !user.isEmpty else { throw fail("no user; write postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME") }
            guard !database.isEmpty else { throw fail("no database name; write postgres://USER@HOST[:PORT]/DBNAME") }
            if host.isEmpty {
                guard socket != nil else { throw fail("no host; write postgres://USER@HOST/DBNAME, or ?host=/socket/folder") }
                host = "localhost"
            }
        }
    }

    /// The URL with its password as `***` (and nothing else changed).
    public var description: String { rendered(password: password == nil ? nil : "***") }

    /// The URL without any password, for tools that find it elsewhere (`PGPASSWORD`, `~/.pgpass`).
    public var urlWithoutPassword: String { rendered(password: nil) }

    private func rendered(password shown: String?) -> String {
        var text = "postgres://" + Self.encode(user) + (shown.map { ":" + $0 } ?? "") + "@"
        text += (host.contains(":") ? "[\(host)]" : host) + ":\(port)/" + Self.encode(database)
        var query: [String] = []
        if let socketFolder { query.append("host=" + socketFolder) }
        if sslMode != .prefer { query.append("sslmode=" + sslMode.rawValue) }
        return query.isEmpty ? text : text + "?" + query.joined(separator: "&")
    }

    /// Any text that may hold a postgres URL with its password hidden: `user:secret@` becomes
    /// `user:***@`, and `password=secret` in a query `password=***`.
    public static func redact(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://") else { return text }
        var result = String(text[..<schemeEnd.upperBound])
        var rest = String(text[schemeEnd.upperBound...])
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        if let at = rest[..<authorityEnd].lastIndex(of: "@"),
           let colon = rest[..<at].firstIndex(of: ":") {
            rest = String(rest[..<colon]) + ":***" + String(rest[at...])
        }
        result += rest
        if let range = result.range(of: #"([?&]password=)[^&]*"#, options: .regularExpression) {
            let key = result[range].prefix { $0 != "=" }
            result.replaceSubrange(range, with: key + "=***")
        }
        return result
    }


    private static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed.subtracting(CharacterSet(charactersIn: ":@/?#"))) ?? text
    }
}
