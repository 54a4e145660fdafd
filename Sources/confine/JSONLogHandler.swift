import API
import Domain
import Foundation
import Logging
import Glibc
import Synchronization

/// Writes one JSON object a line to stderr: `time` (RFC 3339 UTC, ms), `level`, `label`,
/// `message`, then the metadata as top-level keys (`execution_id`, `job_id`, …). For log
/// collectors (`confine serve --log-format json`). Lines are written whole, under a lock.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    private static let lock = Mutex(())

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        var members: [String: JSON] = [
            "time": .string(Timestamp.rfc3339(Date())), "level": .string(event.level.rawValue), "label": .string(label),
            "message": .string("\(event.message)"),
        ]
        for (key, value) in all where members[key] == nil { members[key] = Self.json(value) }
        if let error = event.error, members["error"] == nil { members["error"] = .string("\(error)") }
        // The API's ordered writer (sorted keys, nothing escaped that need not be): a line per
        // execution at info level, so it must cost little (JSONSerialization was ~5 % of the
        // server's CPU per trivial execution).
        var line = JSON.object(members.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }).encoded()
        line.append(0x0a)
        Self.lock.withLock { _ in line.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) } }
    }

    /// Metadata as JSON: whole numbers that fit a double exactly as numbers, the rest as text.
    private static func json(_ value: Logger.Metadata.Value) -> JSON {
        switch value {
        case .string(let s):
            if let n = Int64(s), abs(n) < 1 << 53 { return .number(Double(n)) }
            return .string(s)
        case .stringConvertible(let c): return .string("\(c)")
        case .array(let items): return .array(items.map(json))
        case .dictionary(let map): return .object(map.sorted { $0.key < $1.key }.map { ($0.key, json($0.value)) })
        }
    }
}
