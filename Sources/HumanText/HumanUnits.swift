/// Sizes and durations in the human units operators write in policy files and `--limit`
/// options, and back.
///
/// Promises:
/// - Parsing is exact (integer arithmetic, no floating point): `1.5GiB` is 1,610,612,736 bytes.
/// - Whatever `formatBytes` / `formatMilliseconds` print parses back to the same value.
/// - Negative values, NaN, infinities, overflow and ambiguous units are refused with a message
///   that says what to write instead.
///
/// Sizes: a decimal number (`256`, `1.5`) and an optional unit.
/// - binary units, 1024-based: `KiB`, `MiB`, `GiB`, `TiB`, `PiB` (any letter case), and the
///   Kubernetes spellings `Ki`, `Mi`, `Gi`, `Ti`, `Pi`;
/// - decimal units, 1000-based: `kB`/`KB`, `MB`, `GB`, `TB`, `PB` (1 MB = 1,000,000 bytes);
/// - `B` or no unit: bytes (a plain number must then be whole).
/// - Single letters (`64k`, `512M`, `1g`) are refused as ambiguous: tools disagree on whether
///   `k` means 1000 or 1024 (Kubernetes says 1000, Docker and ulimit say 1024). The message
///   offers both spellings.
/// A fractional size is rounded to the nearest byte. Sizes are limited to `Int64.max` so that
/// any consumer (rlimits, cgroup files) can hold them.
///
/// Durations: a decimal number and a unit, one of `ms`, `s`, `m` (or `min`), `h`. A plain number
/// is refused (seconds or milliseconds?); a value that is not a whole number of milliseconds
/// (`0.5ms`) is refused rather than rounded, since the limits have millisecond resolution.
public enum HumanUnits {

    /// Why a text is not a size or a duration. `message` is a complete sentence fragment meant
    /// to follow a key path: `limits.memory: expected a size such as 256MiB or 1.5GiB, got "lots"`.
    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }

        public init(message: String) { self.message = message }
    }

    /// What a size looks like, for messages.
    public static let sizeExample = "a size such as 256MiB or 1.5GiB"
    /// What a duration looks like, for messages.
    public static let durationExample = "a duration such as 10s, 1.5s, 500ms, 2m or 1h"

    // MARK: Parsing

    /// Parses a size (`256MiB`, `1.5GiB`, `100MB`, `4096`) into bytes.
    public static func parseBytes(_ text: String) throws(ParseError) -> UInt64 {
        let trimmed = trim(text)
        let fail = ParseError(message: "expected \(sizeExample), got \(quoted(text))")
        guard !trimmed.isEmpty else { throw ParseError(message: "expected \(sizeExample), got nothing") }
        if trimmed.hasPrefix("-"), (try? parseBytes(String(trimmed.dropFirst()))) != nil {
            throw ParseError(message: "a size cannot be negative, got \(quoted(text))")
        }
        guard let number = DecimalNumber(prefixOf: trimmed) else { throw fail }
        let unit = trim(String(trimmed[number.end...]))

        let multiplier: UInt64
        if unit.isEmpty || unit == "B" {
            guard number.fractionDigits == 0 || number.fraction == 0 else {
                throw ParseError(message: "a size in bytes must be a whole number, got \(quoted(text)); add a unit such as KiB or MiB")
            }
            multiplier = 1
        } else if let binary = binaryUnits.first(where: { $0.names.contains(unit) || $0.names[0].lowercased() == unit.lowercased() }) {
            multiplier = binary.multiplier
        } else if let decimal = decimalUnits.first(where: { $0.names.contains(unit) }) {
            multiplier = decimal.multiplier
        } else if let ambiguous = ambiguousSizeUnits[unit] {
            let n = String(trimmed[..<number.end])
            throw ParseError(message: "\(quoted(text)) has an ambiguous unit \(quoted(unit)): write \(n)\(ambiguous.binary) (×1024) or \(n)\(ambiguous.decimal) (×1000)")
        } else {
            throw ParseError(message: "expected \(sizeExample), got \(quoted(text)) (unknown unit \(quoted(unit)); use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB)")
        }
        guard let bytes = number.scaled(by: multiplier, roundingRemainder: true), bytes <= UInt64(Int64.max) else {
            throw ParseError(message: "\(quoted(text)) is too large")
        }
        return bytes
    }

    /// Parses a duration (`10s`, `1.5s`, `500ms`, `2m`, `1h`) into milliseconds.
    public static func parseMilliseconds(_ text: String) throws(ParseError) -> Int64 {
        let trimmed = trim(text)
        let fail = ParseError(message: "expected \(durationExample), got \(quoted(text))")
        guard !trimmed.isEmpty else { throw ParseError(message: "expected \(durationExample), got nothing") }
        if trimmed.hasPrefix("-"), (try? parseMilliseconds(String(trimmed.dropFirst()))) != nil {
            throw ParseError(message: "a duration cannot be negative, got \(quoted(text))")
        }
        guard let number = DecimalNumber(prefixOf: trimmed) else { throw fail }
        let unit = trim(String(trimmed[number.end...]))
        let n = String(trimmed[..<number.end])
        let multiplier: UInt64
        switch unit {
        case "":
            throw ParseError(message: "\(quoted(text)) needs a unit: write \(n)s for seconds or \(n)ms for milliseconds (also m, h)")
        case "ms": multiplier = 1
        case "s": multiplier = 1000
        case "m", "min": multiplier = 60_000
        case "h": multiplier = 3_600_000
        case "us", "µs", "ns":
            throw ParseError(message: "\(quoted(text)): durations have millisecond resolution; use ms, s, m or h")
        default:
            throw ParseError(message: "expected \(durationExample), got \(quoted(text)) (unknown unit \(quoted(unit)); use ms, s, m or h)")
        }
        guard let ms = number.scaled(by: multiplier, roundingRemainder: false) else {
            if number.scaled(by: multiplier, roundingRemainder: true) != nil {
                throw ParseError(message: "\(quoted(text)) is not a whole number of milliseconds")
            }
            throw ParseError(message: "\(quoted(text)) is too large")
        }
        guard ms <= UInt64(Int64.max) else { throw ParseError(message: "\(quoted(text)) is too large") }
        return Int64(ms)
    }

    // MARK: Formatting

    /// Formats bytes in the shortest exact human form: `256MiB`, `1.5GiB`, `100MB`, `1000B`.
    /// The result always parses back to `bytes`.
    public static func formatBytes(_ bytes: UInt64) -> String {
        // The shortest exact spelling with a unit and at most two decimals, binary units and
        // larger units first on a tie; plain bytes when no unit fits (so 1.5GiB rather than 1536MiB, 100MB rather than 97656.25KiB).
        var candidates: [String] = []
        for unit in binaryUnits.reversed() + decimalUnits.reversed() where bytes >= unit.multiplier {
            let whole = bytes / unit.multiplier, rest = bytes % unit.multiplier
            if rest == 0 {
                candidates.append("\(whole)\(unit.names[0])")
            } else if (rest * 100) % unit.multiplier == 0 {
                candidates.append("\(whole).\(twoDecimals(rest * 100 / unit.multiplier))\(unit.names[0])")
            }
        }
        guard var best = candidates.first else { return "\(bytes)B" }
        for text in candidates.dropFirst() where text.count < best.count { best = text }
        return best
    }

    /// Formats milliseconds in the shortest exact human form: `500ms`, `1.5s`, `10s`, `2m`, `1h`.
    /// The result always parses back to `milliseconds` (negative input is clamped to 0).
    public static func formatMilliseconds(_ milliseconds: Int64) -> String {
        let ms = max(0, milliseconds)
        if ms < 1000 { return "\(ms)ms" }
        if ms % 3_600_000 == 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        var fraction = String(ms % 1000)
        fraction = String(repeating: "0", count: 3 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(ms / 1000).\(fraction)s"
    }

    // MARK: Internals

    struct Unit {
        let names: [String]  // first: the canonical spelling used when formatting
        let multiplier: UInt64
    }

    static let binaryUnits: [Unit] = [
        Unit(names: ["KiB", "Ki"], multiplier: 1 << 10),
        Unit(names: ["MiB", "Mi"], multiplier: 1 << 20),
        Unit(names: ["GiB", "Gi"], multiplier: 1 << 30),
        Unit(names: ["TiB", "Ti"], multiplier: 1 << 40),
        Unit(names: ["PiB", "Pi"], multiplier: 1 << 50),
    ]

    static let decimalUnits: [Unit] = [
        Unit(names: ["kB", "KB"], multiplier: 1_000),
        Unit(names: ["MB"], multiplier: 1_000_000),
        Unit(names: ["GB"], multiplier: 1_000_000_000),
        Unit(names: ["TB"], multiplier: 1_000_000_000_000),
        Unit(names: ["PB"], multiplier: 1_000_000_000_000_000),
    ]

    static let ambiguousSizeUnits: [String: (binary: String, decimal: String)] = [
        "k": ("KiB", "kB"), "K": ("KiB", "kB"), "kb": ("KiB", "kB"), "Kb": ("KiB", "kB"),
        "m": ("MiB", "MB"), "M": ("MiB", "MB"), "mb": ("MiB", "MB"), "Mb": ("MiB", "MB"),
        "g": ("GiB", "GB"), "G": ("GiB", "GB"), "gb": ("GiB", "GB"), "Gb": ("GiB", "GB"),
        "t": ("TiB", "TB"), "T": ("TiB", "TB"), "tb": ("TiB", "TB"), "Tb": ("TiB", "TB"),
        "p": ("PiB", "PB"), "P": ("PiB", "PB"), "pb": ("PiB", "PB"), "Pb": ("PiB", "PB"),
    ]

    static func twoDecimals(_ hundredths: UInt64) -> String {
        hundredths % 10 == 0 ? "\(hundredths / 10)" : (hundredths < 10 ? "0\(hundredths)" : "\(hundredths)")
    }

    /// `s` without the whitespace around it.
    public static func trim(_ s: String) -> String {
        var sub = Substring(s)
        while let c = sub.first, c.isWhitespace { sub.removeFirst() }
        while let c = sub.last, c.isWhitespace { sub.removeLast() }
        return String(sub)
    }

    /// `s` in double quotes with YAML's escapes, as messages show a value.
    public static func quoted(_ s: String) -> String { Quoting.doubleQuoted(s) }
}

/// An unsigned decimal number read exactly: `12`, `1.5`, `.25`, `3.` (no sign, no exponent).
struct DecimalNumber {
    var integer: UInt64
    var fraction: UInt64       // the digits after the point, as an integer
    var fractionDigits: Int    // how many digits after the point
    var end: String.Index      // where the number stops in the text

    /// Reads the longest number at the start of `text`; nil when there is none, it overflows,
    /// or it has more than 18 decimals.
    init?(prefixOf text: String) {
        var index = text.startIndex
        var integer: UInt64 = 0, intDigits = 0
        while index < text.endIndex, let d = text[index].wholeNumberValue, text[index].isASCII {
            let (m, o1) = integer.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(d))
            if o1 || o2 { return nil }
            integer = a
            intDigits += 1
            index = text.index(after: index)
        }
        var fraction: UInt64 = 0, fractionDigits = 0
        if index < text.endIndex, text[index] == "." {
            index = text.index(after: index)
            while index < text.endIndex, let d = text[index].wholeNumberValue, text[index].isASCII {
                fractionDigits += 1
                if fractionDigits > 18 { return nil }
                fraction = fraction * 10 + UInt64(d)
                index = text.index(after: index)
            }
        }
        guard intDigits + fractionDigits > 0 else { return nil }
        self.integer = integer
        self.fraction = fraction
        self.fractionDigits = fractionDigits
        self.end = index
    }

    /// `self × multiplier` as an integer; nil on overflow, or when the product is not whole and
    /// `roundingRemainder` is false. With `roundingRemainder`, rounds half up.
    func scaled(by multiplier: UInt64, roundingRemainder: Bool) -> UInt64? {
        let (whole, o) = integer.multipliedReportingOverflow(by: multiplier)
        if o { return nil }
        guard fractionDigits > 0, fraction > 0 else { return whole }
        var pow10: UInt64 = 1
        for _ in 0..<fractionDigits { pow10 *= 10 }
        let product = multiplier.multipliedFullWidth(by: fraction)
        // fraction < pow10, so the quotient is < multiplier and cannot overflow.
        let (q, r) = pow10.dividingFullWidth(product)
        var part = q
        if r != 0 {
            guard roundingRemainder else { return nil }
            if r >= pow10 - r { part += 1 }
        }
        let (sum, o2) = whole.addingReportingOverflow(part)
        return o2 ? nil : sum
    }
}
