import Foundation

// The instants a cron expression fires at in a time zone (the system's tz database, through
// Foundation's TimeZone), around daylight-saving changes:
// - a local time that does not exist (spring forward: 02:30 in Paris on the last Sunday of
//   March) runs once, at the first valid instant after it (03:00 CEST, the change itself);
//   several such times (02:00, 02:15, … of `*/15`) are that one run;
// - a local time that happens twice (fall back: 02:30 in Paris on the last Sunday of October)
//   runs once, at its first occurrence (CEST).
// Pure functions of their arguments: tests give them a fixed clock.

extension CronExpression {
    /// How far ahead a next run is looked for: eight years and a day, so that February 29th is
    /// found across a century year that is not a leap year (2100).
    static let searchDays = 366 * 8 + 1

    /// The first instant strictly after `instant` at which the expression fires in `zone`;
    /// nil when it matches no date (`0 0 30 2 *`).
    public func nextRun(after instant: Date, in zone: TimeZone) -> Date? {
        let after = Int64((instant.timeIntervalSince1970).rounded(.down))
        // Local wall-clock seconds of `instant`, started three hours earlier: a local time in a
        // repeated hour, or one a gap moved forward, may map to an instant after `instant`
        // although its wall-clock reading is before `instant`'s.
        let localNow = after + Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(after))))
        let start = localNow - 3 * 3600
        let startDay = Self.floorDiv(start, 86400)
        let hourList = self.hourList, minuteList = self.minuteList
        for day in startDay...(startDay + Int64(Self.searchDays)) {
            let (_, month, dayOfMonth) = Self.civil(fromDays: day)
            guard matches(month: month, day: dayOfMonth, weekday: Self.weekday(fromDays: day)) else { continue }
            for hour in hourList {
                for minute in minuteList {
                    let local = day * 86400 + Int64(hour * 3600 + minute * 60)
                    if local < start { continue }
                    let fire = Self.instant(ofLocal: local, in: zone)
                    if fire > after { return Date(timeIntervalSince1970: TimeInterval(fire)) }
                }
            }
        }
        return nil
    }

    /// The latest instant at or before `instant` at which the expression fires in `zone`, no
    /// earlier than `notBefore`; nil when there is none in between. (A schedule's `catch_up:
    /// last` runs this slot after downtime.)
    public func lastRun(atOrBefore instant: Date, notBefore: Date, in zone: TimeZone) -> Date? {
        var latest: Date? = nil
        var cursor = notBefore.addingTimeInterval(-1)
        while let next = nextRun(after: cursor, in: zone), next <= instant {
            latest = next
            cursor = next
        }
        return latest
    }

    /// Whether it fires at least once within eight years after `instant` (a schedule that never
    /// runs is refused when it is set).
    public func runsAtAll(after instant: Date, in zone: TimeZone) -> Bool { nextRun(after: instant, in: zone) != nil }

    // MARK: Local time to instant

    /// The instant (seconds since 1970) a local wall-clock reading (seconds since 1970 as if
    /// the zone were UTC) stands for: the only one; the first of two (fall back); or, for a
    /// reading that does not exist (spring forward), the first valid instant after it — the
    /// change itself.
    static func instant(ofLocal local: Int64, in zone: TimeZone) -> Int64 {
        func offset(_ instant: Int64) -> Int64 { Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant)))) }
        // The offsets in force a day either side: at most one change lies between them.
        let before = offset(local - 86400), after = offset(local + 86400)
        let valid = Set([before, after]).map { local - $0 }.filter { local - offset($0) == $0 }
        if let first = valid.min() { return first }
        // A gap: the reading lies between the change read with the old offset and read with the
        // new one. The change is the first instant from which the new offset holds.
        var low = local - max(before, after), high = local - min(before, after)
        let newOffset = offset(high)
        if offset(low) == newOffset { return low }
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if offset(middle) == newOffset { high = middle } else { low = middle }
        }
        return high
    }

    // MARK: Civil calendar (proleptic Gregorian), days since 1970-01-01

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : (a - b + 1) / b }

    /// (year, month 1…12, day 1…31) of a day number (Howard Hinnant's algorithm).
    static func civil(fromDays days: Int64) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }

    /// 0 Sunday … 6 Saturday (1970-01-01 was a Thursday).
    static func weekday(fromDays days: Int64) -> Int { Int(((days % 7) + 11) % 7) }
}
