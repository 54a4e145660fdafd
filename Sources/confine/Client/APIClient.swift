import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
import Wire
#endif

/// The options every client verb takes: which server, with which token, and whether to print
/// its JSON.
struct ClientOptions: ParsableArguments {
    /// The server when `--server` is not given and `CONFINE_SERVER` is unset.
    static let defaultServer = "http://127.0.0.1:8000"

    @Option(name: .long, help: ArgumentHelp("The Confine server (default: $CONFINE_SERVER, else server: of the config file, else \(defaultServer)).", valueName: "URL"))
    var server: String?

    @Option(name: .long, help: ArgumentHelp("The API token (default: $CONFINE_TOKEN, else token: of \(ClientConfigFile.displayPath)). Prefer those: a flag shows in `ps`.", valueName: "TOKEN"))
    var token: String?

    @Flag(name: .long, help: "Print the server's JSON answer as received (for scripts).")
    var json = false

    func validate() throws {
        _ = try makeClient()
    }

    /// The config file's settings; a file that cannot be used ends the command with its message
    /// and exit 78 (EX_CONFIG), not a usage block: nothing was wrong with the command line.
    private func configFile() throws -> ClientConfigFile {
        do {
            return try ClientConfigFile.load()
        } catch {
            printClientError(error.description)
            throw ExitCode(error.exitCode)
        }
    }

    /// The client for `--server`, `$CONFINE_SERVER`, the config file or the default, in that
    /// order, with the token of `--token`, `$CONFINE_TOKEN` or the config file.
    func makeClient() throws -> APIClient {
        let environment = ProcessInfo.processInfo.environment
        let file = try configFile()
        var text = server ?? environment["CONFINE_SERVER"] ?? file.server ?? ""
        if text.isEmpty { text = Self.defaultServer }
        // `127.0.0.1:8000` means http://127.0.0.1:8000.
        if !text.contains("://") { text = "http://" + text }
        while text.hasSuffix("/") { text.removeLast() }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty, url.query == nil else {
            throw ValidationError("--server \(server ?? text): expected a URL such as \(Self.defaultServer)")
        }
        var token = token ?? environment["CONFINE_TOKEN"] ?? file.token
        token = token?.trimmingCharacters(in: .whitespacesAndNewlines)
        return APIClient(base: text, token: token?.isEmpty == false ? token : nil)
    }
}

/// Why a client verb failed, and the exit status it gives: 1 for a refusal of the server (4xx),
/// 69 (EX_UNAVAILABLE) when the server cannot be reached or fails (5xx, an unreadable answer),
/// 64 (EX_USAGE) for a malformed flag, 66 (EX_NOINPUT) for an unreadable input file.
enum ClientError: Error, CustomStringConvertible {
    /// The server answered with an error status; `detail` and `field` come from its problem
    /// document (or describe the answer when it was not one).
    case problem(status: Int, detail: String, field: String?, retryAfter: Int?)
    /// No HTTP answer at all: `url` and the reason in words.
    case unreachable(url: String, reason: String)
    /// An answer the client cannot read (not the JSON of the contract).
    case badResponse(url: String, reason: String)
    /// A flag the server never saw because it is malformed (`--limit memory`).
    case usage(String)
    /// A local input that cannot be read (`--file`, `--stdin`).
    case input(String)
    /// The client's config file cannot be used (unreadable, invalid, readable by others).
    case configuration(String)

    var description: String {
        switch self {
        case .problem(_, let detail, let field, let retryAfter):
            var text = detail
            if let field { text += " (field: \(field))" }
            if let retryAfter { text += "; retry after \(retryAfter)s" }
            return text
        case .unreachable(let url, let reason):
            return "cannot reach \(url): \(reason); is `confine serve` running?"
        case .badResponse(let url, let reason):
            return "unexpected answer from \(url): \(reason)"
        case .usage(let message), .input(let message), .configuration(let message):
            return message
        }
    }

    var exitCode: Int32 {
        switch self {
        case .problem(let status, _, _, _): return (400..<500).contains(status) ? 1 : 69
        case .unreachable, .badResponse: return 69
        case .usage: return 64
        case .input: return 66
        case .configuration: return 78
        }
    }

    /// Whether the server said "no such thing" (HTTP 404).
    var isNotFound: Bool {
        if case .problem(404, _, _, _) = self { return true }
        return false
    }
}

/// An HTTP answer of the server: status, headers and the raw body.
struct ClientResponse: Sendable {
    var status: Int
    var headers: [String: String]
    var body: Data

    /// A header, by case-insensitive name.
    func header(_ name: String) -> String? {
        headers.first { $0.key.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// The HTTP plumbing of the client verbs: one server, JSON in and out, every failure a
/// `ClientError`. Requests go through URLSession's async API (no thread is blocked).
struct APIClient: Sendable {
    /// The server's base URL without a trailing slash, e.g. `http://127.0.0.1:8000`.
    let base: String
    /// Sent as `Authorization: Bearer` with every request.
    var token: String? = nil

    /// One session without caches or cookies for the whole process.
    private static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        configuration.httpCookieStorage = nil
        return URLSession(configuration: configuration)
    }()

    /// Characters left as they are in a path segment or a query value (RFC 3986 unreserved).
    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// `text` percent-encoded for use as one path segment or one query value.
    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }

    /// Sends one request and returns the answer when its status is 2xx; otherwise throws the
    /// server's problem as a `ClientError`. `path` is already escaped (see `escape`).
    func send(_ method: String, _ path: String, query: [(String, String)] = [], json body: Data? = nil,
              timeout: TimeInterval = 60) async throws(ClientError) -> ClientResponse {
        var text = base + path
        if !query.isEmpty {
            text += "?" + query.map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&")
        }
        guard let url = URL(string: text) else { throw .usage("cannot make a URL of \(text)") }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = method
        request.setValue("application/json, application/problem+json, */*", forHTTPHeaderField: "Accept")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }

        let data: Data, response: URLResponse
        do {
            (data, response) = try await Self.session.data(for: request)
        } catch {
            throw .unreachable(url: base, reason: Self.reason(error, timeout: timeout))
        }
        guard let http = response as? HTTPURLResponse else {
            throw .badResponse(url: text, reason: "not an HTTP answer")
        }
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields {
            if let key = key as? String, let value = value as? String { headers[key] = value }
        }
        let answer = ClientResponse(status: http.statusCode, headers: headers, body: data)
        guard (200..<300).contains(answer.status) else {
            var error = Self.problem(answer, method: method, url: text)
            if answer.status == 401, case .problem(let status, let detail, let field, let retry) = error {
                let hint = token == nil ? "no token was sent: " : "the token was refused: "
                error = .problem(status: status, detail: detail + " (\(hint)give one with --token, CONFINE_TOKEN or token: in "
                                 + "\(ClientConfigFile.displayPath); the server's first admin token is in admin.token beside its database)",
                                 field: field, retryAfter: retry)
            }
            throw error
        }
        return answer
    }

    /// Sends one request and decodes its JSON answer as `T`; also returns the raw answer (for `--json`).
    func fetch<T: Decodable>(_ type: T.Type, _ method: String, _ path: String, query: [(String, String)] = [],
                             json body: Data? = nil, timeout: TimeInterval = 60) async throws(ClientError) -> (T, ClientResponse) {
        let response = try await send(method, path, query: query, json: body, timeout: timeout)
        return (try decode(type, response, url: base + path), response)
    }

    /// Decodes the JSON of `response` as `T`, naming what did not match when it fails.
    func decode<T: Decodable>(_ type: T.Type, _ response: ClientResponse, url: String) throws(ClientError) -> T {
        do {
            return try JSONDecoder().decode(type, from: response.body)
        } catch let error as DecodingError {
            throw .badResponse(url: url, reason: "HTTP \(response.status) answer does not match the API contract: \(Self.describe(error))")
        } catch {
            throw .badResponse(url: url, reason: "\(error)")
        }
    }

    /// The `ClientError` for an error answer: its problem document, or the status in words.
    static func problem(_ answer: ClientResponse, method: String, url: String) -> ClientError {
        if let problem = try? JSONDecoder().decode(WireProblem.self, from: answer.body), let detail = problem.detail ?? problem.title {
            let retryAfter = problem.retry_after ?? answer.header("Retry-After").flatMap { Int($0) }
            return .problem(status: answer.status, detail: detail, field: problem.field, retryAfter: retryAfter)
        }
        let name = HTTPURLResponse.localizedString(forStatusCode: answer.status)
        var detail = "\(method) \(url): HTTP \(answer.status) \(name)"
        let body = String(decoding: answer.body.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if !body.isEmpty { detail += ": \(body)" }
        return .problem(status: answer.status, detail: detail, field: nil, retryAfter: nil)
    }

    /// Why no answer came, in a few words (`connection refused`, `timed out after 60s`…).
    static func reason(_ error: any Error, timeout: TimeInterval) -> String {
        guard let error = error as? URLError else { return "\(error)" }
        switch error.code {
        case .cannotConnectToHost: return "connection refused"
        case .cannotFindHost, .dnsLookupFailed: return "host not found"
        case .timedOut: return "no answer within \(Int(timeout))s (timed out)"
        case .networkConnectionLost: return "connection closed by the server"
        case .notConnectedToInternet: return "network unreachable"
        case .badServerResponse: return "not an HTTP server"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
             .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot:
            return "TLS failed: \(error.localizedDescription)"
        default: return error.localizedDescription
        }
    }

    /// A decoding error as `key.path: what was wrong`.
    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let text = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return text.isEmpty ? "the answer" : text
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context)).\(key.stringValue) is missing"
        case .typeMismatch(let type, let context): return "\(path(context)) is not \(type): \(context.debugDescription)"
        case .valueNotFound(let type, let context): return "\(path(context)) is null, expected \(type)"
        case .dataCorrupted(let context): return "\(path(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

/// Runs a client verb's body and turns a `ClientError` into `confine: <words>` on stderr and
/// its exit status.
func runClientVerb(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ClientError {
        printClientError(error.description)
        throw ExitCode(error.exitCode)
    }
}

/// Prints `confine: <message>` on stderr.
func printClientError(_ message: String) {
    FileHandle.standardError.write(Data("confine: \(message)\n".utf8))
}

/// Writes `data` to a file descriptor completely (stdout is 1, stderr 2), as raw bytes.
func writeAll(_ data: Data, to fd: Int32) {
    data.withUnsafeBytes { buffer in
        guard let base = buffer.baseAddress else { return }
        var offset = 0
        while offset < buffer.count {
            let n = write(fd, base + offset, buffer.count - offset)
            if n < 0, errno == EINTR { continue }
            if n <= 0 { break }
            offset += n
        }
    }
}

/// Prints a JSON answer as received, ending with a newline.
func printJSON(_ response: ClientResponse) {
    var data = response.body
    if data.last != UInt8(ascii: "\n") { data.append(UInt8(ascii: "\n")) }
    writeAll(data, to: 1)
}

/// JSON for a request body (keys as the structs name them; nil members left out).
func encodeBody<T: Encodable>(_ value: T) -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    // The request structs only hold strings, numbers and collections of them: this cannot fail.
    return (try? encoder.encode(value)) ?? Data("{}".utf8)
}

/// `NAME=VALUE` flags (`--env`, `--limit`) as a mapping; a malformed one is a usage error.
func parsePairs(_ items: [String], flag: String) throws(ClientError) -> [String: String] {
    var pairs: [String: String] = [:]
    for item in items {
        guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
            throw .usage("\(flag) \(item): expected NAME=VALUE")
        }
        pairs[String(item[..<eq])] = String(item[item.index(after: eq)...])
    }
    return pairs
}

/// The bytes of a file, or of this process's stdin for `-`, read off the cooperative pool.
func readInput(_ path: String, flag: String) async throws(ClientError) -> Data {
    let result: Data? = await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
            if path == "-" {
                continuation.resume(returning: FileHandle.standardInput.readDataToEndOfFile())
            } else {
                continuation.resume(returning: FileManager.default.contents(atPath: path))
            }
        }
    }
    guard let result else { throw .input("\(flag) \(path): cannot read the file") }
    return result
}
