import Foundation

/// A standard 5-field cron expression (`minute hour day-of-month month day-of-week`), as Vixie
/// cron reads it: lists (`1,15`), ranges (`1-5`), steps (`*/15`, `0-30/10`, `5/20` = from 5 to the
/// end by 20), month names (`jan`…`dec`) and day names (`sun`…`sat`, case-insensitive; in ranges
/// too), 0 or 7 for Sunday, and the macros `@yearly`/`@annually`, `@monthly`, `@weekly`,
/// `@daily`/`@midnight`, `@hourly`. When both the day of month and the day of week are
/// restricted (neither field starts with `*`), a day matches when either does (Vixie's OR rule).
///
/// Parsing is strict: an error names the field and the reason (`CronError`). The next run in a
/// time zone is `nextRun(after:in:)` (CronExpression+NextRun.swift).
public struct CronExpression: Sendable, Equatable, CustomStringConvertible {
    /// The expression as it was given (trimmed).
    public let text: String
    /// Bit n set: minute n (0…59).
    let minutes: UInt64
    /// Bit n set: hour n (0…23).
    let hours: UInt32
    /// Bit n set: day n of the month (1…31).
    let daysOfMonth: UInt32
    /// Bit n set: month n (1…12).
    let months: UInt16
    /// Bit n set: weekday n (0 Sunday … 6 Saturday).
    let daysOfWeek: UInt8
    /// Whether the field was given without a leading `*` (the OR rule applies when both are).
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool

    public var description: String { text }

    /// The fields in order, with their names in errors and their ranges.
    static let fields: [(name: String, range: ClosedRange<Int>, names: [String])] = [
        ("minute", 0...59, []),
        ("hour", 0...23, []),
        ("day-of-month", 1...31, []),
        ("month", 1...12, ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]),
        ("day-of-week", 0...7, ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]),
    ]

    /// The macros and the expressions they stand for.
    static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]

    public init(parsing input: String) throws(CronError) {
        let trimmed = input.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw .empty }
        var expanded = trimmed
        if trimmed.hasPrefix("@") {
            guard let macro = Self.macros[trimmed.lowercased()] else {
                if trimmed.lowercased() == "@reboot" { throw .unsupportedMacro(trimmed) }
                throw .unknownMacro(trimmed, known: Self.macros.keys.sorted())
            }
            expanded = macro
        }
        let parts = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard parts.count == 5 else { throw .fieldCount(parts.count) }
        var sets: [UInt64] = []
        for (index, part) in parts.enumerated() {
            sets.append(try Self.parseField(part, Self.fields[index]))
        }
        text = trimmed
        minutes = sets[0]
        hours = UInt32(truncatingIfNeeded: sets[1])
        daysOfMonth = UInt32(truncatingIfNeeded: sets[2])
        months = UInt16(truncatingIfNeeded: sets[3])
        // 7 is Sunday too.
        var weekdays = sets[4]
        if weekdays & (1 << 7) != 0 { weekdays = (weekdays | 1) & ~(1 << 7) }
        daysOfWeek = UInt8(truncatingIfNeeded: weekdays)
        dayOfMonthRestricted = !parts[2].hasPrefix("*")
        dayOfWeekRestricted = !parts[4].hasPrefix("*")
    }

    /// One field: a comma-separated list of `*`, `N`, `N-M`, each with an optional `/STEP`.
    static func parseField(_ text: String, _ field: (name: String, range: ClosedRange<Int>, names: [String])) throws(CronError) -> UInt64 {
        var set: UInt64 = 0
        for item in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            guard !item.isEmpty else { throw .invalid(field: field.name, reason: "an empty item in the list \"\(text)\"") }
            var body = item
            var step = 1
            if let slash = item.firstIndex(of: "/") {
                body = String(item[..<slash])
                let stepText = String(item[item.index(after: slash)...])
                guard let value = Int(stepText), stepText.allSatisfy(\.isASCII) else {
                    throw .invalid(field: field.name, reason: "the step \"\(stepText)\" in \"\(item)\" is not a number")
                }
                guard value >= 1 else { throw .invalid(field: field.name, reason: "the step in \"\(item)\" must be at least 1") }
                guard value <= field.range.upperBound - field.range.lowerBound + 1 else {
                    throw .invalid(field: field.name, reason: "the step \(value) in \"\(item)\" is larger than the field's range "
                                   + "\(field.range.lowerBound)-\(field.range.upperBound)")
                }
                step = value
            }
            let low: Int, high: Int
            if body == "*" {
                (low, high) = (field.range.lowerBound, field.name == "day-of-week" ? 6 : field.range.upperBound)
            } else if let dash = body.firstIndex(of: "-"), dash != body.startIndex {
                low = try value(String(body[..<dash]), in: item, field)
                high = try value(String(body[body.index(after: dash)...]), in: item, field)
                guard low <= high else {
                    throw .invalid(field: field.name, reason: "the range \"\(body)\" goes backwards (\(low) is after \(high))")
                }
            } else {
                low = try value(body, in: item, field)
                // `N/STEP`: from N to the end of the field's range.
                high = item.contains("/") ? (field.name == "day-of-week" ? 6 : field.range.upperBound) : low
                if item.contains("/"), low > high {
                    throw .invalid(field: field.name, reason: "\"\(item)\" starts after the end of the field's range")
                }
            }
            for n in stride(from: low, through: high, by: step) { set |= 1 << UInt64(n) }
        }
        return set
    }

    /// A number or a name of the field, within its range.
    static func value(_ text: String, in item: String, _ field: (name: String, range: ClosedRange<Int>, names: [String])) throws(CronError) -> Int {
        if let index = field.names.firstIndex(of: text.lowercased()) {
            return field.name == "month" ? index + 1 : index
        }
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let number = Int(text) else {
            let names = field.names.isEmpty ? "" : " or a name (\(field.names.joined(separator: ", ")))"
            throw .invalid(field: field.name, reason: "\"\(text)\" in \"\(item)\" is not a number\(names)")
        }
        guard field.range.contains(number) else {
            throw .invalid(field: field.name, reason: "\(number) is out of range \(field.range.lowerBound)-\(field.range.upperBound)")
        }
        return number
    }

    /// Whether the expression runs on this calendar day (month, and day of month / day of week
    /// with the OR rule when both are restricted).
    func matches(month: Int, day: Int, weekday: Int) -> Bool {
        guard months & (1 << UInt16(month)) != 0 else { return false }
        let domMatch = daysOfMonth & (1 << UInt32(day)) != 0
        let dowMatch = daysOfWeek & (1 << UInt8(weekday)) != 0
        if dayOfMonthRestricted && dayOfWeekRestricted { return domMatch || dowMatch }
        return domMatch && dowMatch
    }

    /// The hours of the day it runs at, ascending.
    var hourList: [Int] { (0...23).filter { hours & (1 << UInt32($0)) != 0 } }
    /// The minutes of the hour it runs at, ascending.
    var minuteList: [Int] { (0...59).filter { minutes & (1 << UInt64($0)) != 0 } }
}

/// Why a cron expression was refused: the field and the reason.
public enum CronError: Error, CustomStringConvertible, Equatable, Sendable {
    case empty
    case fieldCount(Int)
    case invalid(field: String, reason: String)
    case unknownMacro(String, known: [String])
    case unsupportedMacro(String)
    /// A valid expression that matches no date (`0 0 30 2 *`: February 30th).
    case neverRuns(String)

    public var description: String {
        switch self {
        case .empty: return "the cron expression is empty; expected 5 fields: minute hour day-of-month month day-of-week"
        case .fieldCount(let count):
            return "expected 5 fields (minute hour day-of-month month day-of-week), got \(count)"
        case .invalid(let field, let reason): return "\(field): \(reason)"
        case .unknownMacro(let macro, let known): return "unknown macro \(macro); known: \(known.joined(separator: ", "))"
        case .unsupportedMacro(let macro): return "\(macro) is not supported: a schedule runs at times, not at a server's start"
        case .neverRuns(let text): return "\"\(text)\" matches no date (a day that does not exist in the months given)"
        }
    }

    /// The field the error is about, when one is (`minute`, `day-of-week`…).
    public var field: String? {
        if case .invalid(let field, _) = self { return field }
        return nil
    }
}
