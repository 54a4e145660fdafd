import Domain
import Foundation
import Logging
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
        var object: [String: Any] = [
            "time": Timestamp.rfc3339(Date()), "level": event.level.rawValue, "label": label, "message": "\(event.message)",
        ]
        for (key, value) in all where object[key] == nil { object[key] = Self.json(value) }
        if let error = event.error, object["error"] == nil { object["error"] = "\(error)" }
        guard var line = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return }
        line.append(0x0a)
        Self.lock.withLock { _ in FileHandle.standardError.write(line) }
    }

    private static func json(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let s): return Int64(s).map { $0 as Any } ?? s
        case .stringConvertible(let c): return "\(c)"
        case .array(let items): return items.map(json)
        case .dictionary(let map): return map.mapValues(json)
        }
    }
}
