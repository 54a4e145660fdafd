import Foundation

/// A table for people: a header row and rows, columns aligned with two spaces between them
/// (the last column is not padded).
struct Table {
    var headers: [String]
    var rows: [[String]] = []

    init(_ headers: String...) { self.headers = headers }

    mutating func add(_ row: [String]) { rows.append(row) }

    func render() -> String {
        let all = [headers] + rows
        let columns = headers.count
        var widths = Array(repeating: 0, count: columns)
        for row in all {
            for (i, cell) in row.prefix(columns).enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        return all.map { row in
            (0..<columns).map { i in
                let cell = i < row.count ? row[i] : ""
                return i == columns - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }.joined(separator: "\n") + "\n"
    }
}

/// `key: value` lines with the values aligned, for `show`.
struct Fields {
    private var pairs: [(String, String)] = []

    mutating func add(_ key: String, _ value: String) { pairs.append((key, value)) }

    func render() -> String {
        let width = (pairs.map(\.0.count).max() ?? 0) + 1
        return pairs.map { key, value in
            ((key + ":").padding(toLength: width, withPad: " ", startingAt: 0) + " " + value).trimmingTrailingSpaces()
        }.joined(separator: "\n") + "\n"
    }
}

/// How the client verbs show values in tables and `show`.
enum Display {
    /// An RFC 3339 date shortened for a table: `2026-11-27 03:04:05Z` (UTC, whole seconds).
    static func date(_ text: String?) -> String {
        guard let text, text.count >= 19 else { return text ?? "-" }
        var short = String(text.prefix(19)).replacingOccurrences(of: "T", with: " ")
        if text.hasSuffix("+00:00") || text.hasSuffix("Z") { short += "Z" }
        return short
    }

    /// Milliseconds as `850ms`, `3.20s` or `2m05s`.
    static func duration(ms: Int64?) -> String {
        guard let ms else { return "-" }
        if ms < 1000 { return "\(ms)ms" }
        if ms < 60_000 { return String(format: "%.2fs", Double(ms) / 1000) }
        let seconds = ms / 1000
        return "\(seconds / 60)m" + String(format: "%02ds", seconds % 60)
    }

    /// Bytes as `512 B`, `1.5 KiB`, `64.0 MiB`.
    static func bytes(_ count: Int64?) -> String {
        guard let count else { return "-" }
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count), unit = 0
        while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(count) B" : String(format: "%.1f", value) + " " + units[unit]
    }

    /// A mapping as `a=1, b=2` (sorted by key), or `-` when empty.
    static func pairs(_ mapping: [String: String]) -> String {
        mapping.isEmpty ? "-" : mapping.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
    }

    /// A list of arguments, each quoted when it needs to be, or `-` when empty.
    static func arguments(_ list: [String]?) -> String {
        guard let list, !list.isEmpty else { return "-" }
        return list.map { $0.isEmpty || $0.contains(where: { " \t\n\"'\\$".contains($0) }) ? "\"\($0.replacingOccurrences(of: "\"", with: "\\\""))\"" : $0 }
            .joined(separator: " ")
    }
}

fileprivate extension String {
    func trimmingTrailingSpaces() -> String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
