import Foundation

/// Milliseconds since 1970: how the store keeps dates.
enum Millis {
    static var now: Int64 { of(Date()) }
    static func of(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func date(_ millis: Int64) -> Date { Date(timeIntervalSince1970: TimeInterval(millis) / 1000) }
}

/// JSON text columns (lists and maps); not the API's `JSON` value.
enum JSONText {
    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self)
    }

    /// `empty` is the value of a missing text, of the common `[]` / `{}` (without building a
    /// decoder: most rows have no arguments and no environment) and of a text that does not
    /// decode.
    static func decode<T: Decodable>(_ type: T.Type, _ text: String?, empty: T) -> T {
        guard let text, text != "[]", text != "{}" else { return empty }
        return (try? JSONDecoder().decode(T.self, from: Data(text.utf8))) ?? empty
    }
}
