import Foundation
import Store
import HumanText
import Sandbox

/// One value of the server's configuration (a file's key or a CONFINE_* variable) read as what
/// its key needs; every refusal names the file and the key (or the variable) and says what was
/// expected and what came.
struct ConfigurationValue {
    /// The value as written.
    let text: String
    /// The file it came from; nil for the environment.
    let file: String?
    /// The key, or the environment variable, it was given by.
    let key: String

    /// The refusal of this value.
    func failure(_ message: String) -> ConfigurationError { ConfigurationError(file: file, key: key, message: message) }

    private var trimmed: String { text.trimmingCharacters(in: .whitespaces) }

    /// `0` (a feature turned off).
    var isZero: Bool { trimmed == "0" }

    /// A whole number in `range`.
    func count(_ range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard let n = Int(trimmed), range.contains(n) else {
            throw failure("expected a whole number from \(range.lowerBound) to \(range.upperBound), got \(HumanUnitsText.quoted(text))")
        }
        return n
    }

    /// A size (`64MiB`) from 1 byte to `max`.
    func size(max: UInt64) throws(ConfigurationError) -> Int {
        let n: UInt64
        do { n = try HumanUnits.parseBytes(text) } catch { throw failure(error.message) }
        guard n >= 1, n <= max else {
            throw failure("expected a size from 1 byte to \(HumanUnits.formatBytes(max)), got \(HumanUnitsText.quoted(text))")
        }
        return Int(n)
    }

    /// A duration above zero (`10s`, `5m`, `30d`).
    func duration() throws(ConfigurationError) -> Duration {
        let ms: Int64
        do { ms = try HumanUnitsText.milliseconds(text) } catch { throw failure(error.message + " (or days: 30d)") }
        guard ms > 0 else { throw failure("expected a duration above zero, got \(HumanUnitsText.quoted(text))") }
        return .milliseconds(ms)
    }

    /// `host:port` (`127.0.0.1:8000`, `[::1]:8000`; port 0 lets the kernel pick).
    func hostAndPort() throws(ConfigurationError) -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port) else {
            throw failure("expected host:port such as 127.0.0.1:8000, got \(HumanUnitsText.quoted(text))")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw failure("the host is missing; use 127.0.0.1:\(port) or 0.0.0.0:\(port)") }
        return (host, port)
    }

    /// A path, not empty; `what` says which kind ("a file path").
    func path(_ what: String) throws(ConfigurationError) -> String {
        guard !text.isEmpty else { throw failure("expected \(what)") }
        return text
    }

    /// A database: a SQLite file path or a postgres:// URL (its password never in the error).
    func database() throws(ConfigurationError) -> String {
        do {
            _ = try DatabaseLocation.parse(text)
        } catch {
            throw failure(error.text.isEmpty ? error.reason : "\(error.text): \(error.reason)")
        }
        return text
    }

    /// An absolute path; `what` says which kind.
    func absolutePath(_ what: String) throws(ConfigurationError) -> String {
        guard text.hasPrefix("/") else { throw failure("expected \(what), got \(HumanUnitsText.quoted(text))") }
        return text
    }

    /// The spawner's host uid or gid: unprivileged, and none of the ids sandboxed programs run
    /// as on the host (`sandboxIDs`), since the spawner owns their user namespaces. (The
    /// `Sandbox` checks the pair again once every key is read.)
    func spawnerID(outside sandboxIDs: ClosedRange<UInt32>) throws(ConfigurationError) -> UInt32 {
        let id = UInt32(try count(1...4_294_967_294))
        guard !sandboxIDs.contains(id), id != SandboxConfiguration.overflowID else {
            throw failure(SandboxConfiguration.spawnerIDRule(sandboxIDs))
        }
        return id
    }

    /// One of `choices`, as written.
    func choice(_ choices: [String], wording: String? = nil) throws(ConfigurationError) -> String {
        guard choices.contains(text) else {
            throw failure("expected \(wording ?? "one of " + choices.joined(separator: ", ")), got \(HumanUnitsText.quoted(text))")
        }
        return text
    }

    /// `cgroups, seccomp`: isolation the host may lack (never the user namespaces).
    func waivableIsolation() throws(ConfigurationError) -> Set<IsolationFeature> {
        var allowed: Set<IsolationFeature> = []
        for name in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
            guard let feature = IsolationFeature(rawValue: name) else {
                let names = IsolationFeature.allCases.filter(\.canBeWaived).map(\.rawValue)
                throw failure("unknown \(HumanUnitsText.quoted(name))\(Suggestions.didYouMean(name, in: names)); "
                              + "the isolation that may be allowed missing is \(names.joined(separator: ", "))")
            }
            guard feature.canBeWaived else {
                throw failure("\(name) cannot be allowed missing: \(feature.consequence); only cgroups and seccomp can")
            }
            allowed.insert(feature)
        }
        return allowed
    }

    /// `ready, docs, openapi, metrics`: route switches, each one of `allowed`.
    func routeSwitches(closable allowed: Set<String>? = nil) throws(ConfigurationError) -> Set<String> {
        let names = list()
        for name in names where !AccessRule.switches.contains(name) {
            throw failure("unknown route switch \(HumanUnitsText.quoted(name))\(Suggestions.didYouMean(name, in: AccessRule.switches)); "
                          + "expected any of \(AccessRule.switches.joined(separator: ", ")) (/health is always open)")
        }
        if let allowed, let name = names.first(where: { !allowed.contains($0) }) {
            throw failure("\(name) is not open by default, so it cannot be closed; the routes open by default are "
                          + allowed.sorted().joined(separator: ", "))
        }
        return Set(names)
    }

    /// The comma-separated items of the value, blanks trimmed, empty ones dropped.
    private func list() -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// An absolute http(s) URL without query or fragment (`https://confine.example.com/api`),
    /// its trailing slash dropped.
    func publicURL() throws(ConfigurationError) -> String {
        var url = trimmed
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = parts.host, !host.isEmpty, parts.query == nil, parts.fragment == nil, parts.user == nil else {
            throw failure("expected an http or https URL without query, such as https://confine.example.com, got \(HumanUnitsText.quoted(text))")
        }
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }

    /// Web origins (`https://ops.example.com`, `http://localhost:3000`) or `*`: scheme, host
    /// and port only, as browsers send them in `Origin`.
    func origins() throws(ConfigurationError) -> [String] {
        var origins: [String] = []
        for item in list() {
            if item == "*" { origins.append(item); continue }
            guard let parts = URLComponents(string: item), let scheme = parts.scheme, ["http", "https"].contains(scheme),
                  let host = parts.host, !host.isEmpty, parts.path.isEmpty, parts.query == nil, parts.fragment == nil,
                  parts.user == nil, item == item.lowercased() else {
                throw failure("expected origins such as https://ops.example.com or http://localhost:3000 (lowercase scheme, "
                              + "host and port, no path), or *, got \(HumanUnitsText.quoted(item))")
            }
            origins.append(item)
        }
        return origins
    }

    /// The base64 of a 32-byte key.
    func secretsKey() throws(ConfigurationError) -> String {
        guard let key = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), key.count == 32 else {
            throw failure("expected the base64 of 32 bytes (make one with: head -c 32 /dev/urandom | base64)")
        }
        return text
    }
}

extension Duration {
    /// As seconds, with their fraction.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
