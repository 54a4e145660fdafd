/// Names that identify something — tenants, job names, token names — are kept verbatim (not
/// normalised: the bytes a client sends are the bytes stored) and compared byte for byte, as
/// the database compares them. Swift's `==` on `String` treats canonically equivalent strings
/// as equal ("jose\u{301}" == "jos\u{e9}"), which would let one tenant act as another where
/// the server compares in Swift while listings, compared in SQL, show nothing: never use it for
/// an identity.
public enum ExactName {
    /// Whether `a` and `b` are the same bytes (nil only equals nil).
    public static func same(_ a: String?, _ b: String?) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case let (a?, b?): return a.utf8.elementsEqual(b.utf8)
        default: return false
        }
    }

    /// Why `text` cannot be a name of at most `characters` characters (Unicode code points, as
    /// JSON Schema's `maxLength` counts them: one letter and 400,000 combining marks is one
    /// grapheme but 400,001 code points and 800 KB) and `bytes` UTF-8 bytes, or nil when it
    /// can. Empty names, control characters (C0, C1, DEL) and line or paragraph separators are
    /// refused. The reason starts with `field`.
    public static func problem(_ text: String, field: String, characters: Int, bytes: Int) -> String? {
        let count = text.unicodeScalars.count, size = text.utf8.count
        if count == 0 { return "\(field) must not be empty" }
        if count > characters { return "\(field) is \(count) characters (code points) long; at most \(characters) are accepted" }
        if size > bytes { return "\(field) is \(size) bytes long in UTF-8; at most \(bytes) are accepted" }
        if let bad = text.unicodeScalars.first(where: isRefused) {
            let hex = String(bad.value, radix: 16, uppercase: true)
            let code = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            return "\(field) contains the control character \(code); control characters are refused"
        }
        return nil
    }

    private static func isRefused(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .lineSeparator, .paragraphSeparator: return true
        default: return false
        }
    }
}
