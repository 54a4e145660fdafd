/// How messages and rendered YAML quote a value: in double quotes with YAML's escapes, so that
/// control characters, quotes and invisible characters are shown, never acted upon.
public enum Quoting {
    /// `"a \"b\"\n"`: a string in double quotes with YAML's escapes.
    public static func doubleQuoted(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if c.value < 0x20 || c.value == 0x7f || (c.value >= 0x80 && c.value < 0xa0) || c.value == 0x2028 || c.value == 0x2029 || c.value == 0xfeff {
                    let hex = String(c.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out + "\""
    }
}
