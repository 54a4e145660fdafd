import Foundation

/// Dates as Confine writes them everywhere (API answers, JSON logs): RFC 3339, UTC,
/// milliseconds, numeric offset — `2026-11-27T03:04:05.123+00:00`, which Python's
/// `datetime.fromisoformat` reads on every version and JavaScript's `Date` too.
public enum Timestamp {
    public static func rfc3339(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        // Floor division: a date before 1970 still has milliseconds from 0 to 999.
        let (quotient, remainder) = ms.quotientAndRemainder(dividingBy: 1000)
        var seconds = time_t(remainder < 0 ? quotient - 1 : quotient)
        let millis = Int(remainder < 0 ? remainder + 1000 : remainder)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let year = Int(parts.tm_year) + 1900
        guard (0...9999).contains(year) else { return wideYear(year, parts, millis) }
        // Written into the string's own 29 bytes (three of these per execution of a listing).
        return String(unsafeUninitializedCapacity: 29) { buffer in
            func put(_ value: Int, _ width: Int, at offset: Int) {
                var rest = value
                for i in stride(from: offset + width - 1, through: offset, by: -1) {
                    buffer[i] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
            }
            put(year, 4, at: 0)
            buffer[4] = UInt8(ascii: "-")
            put(Int(parts.tm_mon) + 1, 2, at: 5)
            buffer[7] = UInt8(ascii: "-")
            put(Int(parts.tm_mday), 2, at: 8)
            buffer[10] = UInt8(ascii: "T")
            put(Int(parts.tm_hour), 2, at: 11)
            buffer[13] = UInt8(ascii: ":")
            put(Int(parts.tm_min), 2, at: 14)
            buffer[16] = UInt8(ascii: ":")
            put(Int(parts.tm_sec), 2, at: 17)
            buffer[19] = UInt8(ascii: ".")
            put(millis, 3, at: 20)
            for (i, byte) in "+00:00".utf8.enumerated() { buffer[23 + i] = byte }
            return 29
        }
    }

    /// A year outside 0…9999, written with as many digits as it has.
    private static func wideYear(_ year: Int, _ parts: tm, _ millis: Int) -> String {
        func pad(_ n: Int, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(year, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))T"
            + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(millis, 3))+00:00"
    }
}
