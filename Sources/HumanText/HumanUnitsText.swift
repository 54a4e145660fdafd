import Foundation

/// Times in the units of policies (`10s`, `5m`), plus days (`30d`) for retention.
public enum HumanUnitsText {
    /// `"value"`: in plain double quotes, as configuration messages show a value.
    public static func quoted(_ s: String) -> String { "\"\(s)\"" }

    /// Milliseconds of `10s`, `5m`, `12h` or `30d`.
    public static func milliseconds(_ text: String) throws(HumanUnits.ParseError) -> Int64 {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.hasSuffix("d"), let days = Double(t.dropLast()), days >= 0, days <= 36_500 {
            return Int64(days * 86_400_000)
        }
        return try HumanUnits.parseMilliseconds(t)
    }
}
