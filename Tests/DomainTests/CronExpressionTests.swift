import Domain
import Foundation
import XCTest

/// Cron parsing and next-run computation, with a fixed clock: every instant is written out, so
/// nothing depends on when the test runs.
final class CronExpressionTests: XCTestCase {
    /// An instant from its RFC 3339 text.
    func at(_ text: String) -> Date {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        guard let date = formatter.date(from: text) else { fatalError("bad date \(text)") }
        return date
    }

    func zone(_ identifier: String) throws -> TimeZone {
        try XCTUnwrap(TimeZone(identifier: identifier), "the tz database lacks \(identifier)")
    }

    /// The next `count` runs after `start`.
    func runs(_ cron: String, after start: String, in zoneName: String, count: Int) throws -> [Date] {
        let expression = try CronExpression(parsing: cron)
        let zone = try zone(zoneName)
        var out: [Date] = [], cursor = at(start)
        for _ in 0..<count {
            guard let next = expression.nextRun(after: cursor, in: zone) else { break }
            out.append(next)
            cursor = next
        }
        return out
    }

    // MARK: Parsing

    func testFieldsListsRangesStepsAndNames() throws {
        let utc = try zone("UTC")
        // Every 15 minutes.
        XCTAssertEqual(try runs("*/15 * * * *", after: "2026-01-01T00:00:00Z", in: "UTC", count: 3),
                       [at("2026-01-01T00:15:00Z"), at("2026-01-01T00:30:00Z"), at("2026-01-01T00:45:00Z")])
        // A list and a range with a step.
        XCTAssertEqual(try runs("5,10 0-4/2 * * *", after: "2026-01-01T00:00:00Z", in: "UTC", count: 4),
                       [at("2026-01-01T00:05:00Z"), at("2026-01-01T00:10:00Z"), at("2026-01-01T02:05:00Z"), at("2026-01-01T02:10:00Z")])
        // Names of months and days, any case, in ranges: weekdays of February at 09:30.
        let expression = try CronExpression(parsing: "30 9 * FEB Mon-fri")
        let first = try XCTUnwrap(expression.nextRun(after: at("2026-01-15T00:00:00Z"), in: utc))
        XCTAssertEqual(first, at("2026-02-02T09:30:00Z"))  // 2026-02-01 is a Sunday
        // N/STEP: from N to the end of the field.
        XCTAssertEqual(try runs("50/5 * * * *", after: "2026-01-01T00:00:00Z", in: "UTC", count: 3),
                       [at("2026-01-01T00:50:00Z"), at("2026-01-01T00:55:00Z"), at("2026-01-01T01:50:00Z")])
        // 7 is Sunday as 0 is.
        XCTAssertEqual(try runs("0 12 * * 7", after: "2026-01-01T00:00:00Z", in: "UTC", count: 1), [at("2026-01-04T12:00:00Z")])
        XCTAssertEqual(try runs("0 12 * * 0", after: "2026-01-01T00:00:00Z", in: "UTC", count: 1), [at("2026-01-04T12:00:00Z")])
    }

    func testMacros() throws {
        let start = "2026-05-17T10:20:00Z"
        XCTAssertEqual(try runs("@hourly", after: start, in: "UTC", count: 1), [at("2026-05-17T11:00:00Z")])
        XCTAssertEqual(try runs("@daily", after: start, in: "UTC", count: 1), [at("2026-05-18T00:00:00Z")])
        XCTAssertEqual(try runs("@midnight", after: start, in: "UTC", count: 1), [at("2026-05-18T00:00:00Z")])
        XCTAssertEqual(try runs("@weekly", after: start, in: "UTC", count: 1), [at("2026-05-24T00:00:00Z")])  // a Sunday
        XCTAssertEqual(try runs("@monthly", after: start, in: "UTC", count: 1), [at("2026-06-01T00:00:00Z")])
        XCTAssertEqual(try runs("@yearly", after: start, in: "UTC", count: 1), [at("2027-01-01T00:00:00Z")])
        XCTAssertEqual(try runs("@annually", after: start, in: "UTC", count: 1), [at("2027-01-01T00:00:00Z")])
        XCTAssertThrowsError(try CronExpression(parsing: "@reboot")) { error in
            XCTAssertEqual(error as? CronError, .unsupportedMacro("@reboot"))
        }
        XCTAssertThrowsError(try CronExpression(parsing: "@fortnightly")) { error in
            XCTAssertTrue("\(error)".contains("unknown macro @fortnightly"), "\(error)")
        }
    }

    /// Vixie's rule: with both day fields restricted, either matching is enough; with one of
    /// them `*`, only the other counts.
    func testDayOfMonthOrDayOfWeek() throws {
        // The 13th, and every Friday: 2026-03-06 (Fri), 2026-03-13 (Fri and the 13th), 2026-03-20 (Fri).
        XCTAssertEqual(try runs("0 0 13 * 5", after: "2026-03-01T00:00:00Z", in: "UTC", count: 4),
                       [at("2026-03-06T00:00:00Z"), at("2026-03-13T00:00:00Z"), at("2026-03-20T00:00:00Z"), at("2026-03-27T00:00:00Z")])
        // The 13th only when the weekday field is *.
        XCTAssertEqual(try runs("0 0 13 * *", after: "2026-03-01T00:00:00Z", in: "UTC", count: 2),
                       [at("2026-03-13T00:00:00Z"), at("2026-04-13T00:00:00Z")])
        // `*/2` in day-of-month starts with *: not restricted, so the weekday alone decides among odd days.
        XCTAssertEqual(try runs("0 0 */2 * 1", after: "2026-03-01T00:00:00Z", in: "UTC", count: 2),
                       [at("2026-03-09T00:00:00Z"), at("2026-03-23T00:00:00Z")])
    }

    func testErrorsNameTheFieldAndTheReason() {
        func error(_ text: String) -> CronError? {
            do { _ = try CronExpression(parsing: text); return nil } catch { return error }
        }
        XCTAssertEqual(error("60 * * * *"), .invalid(field: "minute", reason: "60 is out of range 0-59"))
        XCTAssertEqual(error("* 24 * * *"), .invalid(field: "hour", reason: "24 is out of range 0-23"))
        XCTAssertEqual(error("* * 0 * *"), .invalid(field: "day-of-month", reason: "0 is out of range 1-31"))
        XCTAssertEqual(error("* * * 13 *")?.field, "month")
        XCTAssertEqual(error("* * * * 8")?.field, "day-of-week")
        XCTAssertEqual(error("* * * foo *")?.field, "month")
        XCTAssertTrue(error("* * * foo *")!.description.contains("jan, feb"), error("* * * foo *")!.description)
        XCTAssertEqual(error("*/0 * * * *"), .invalid(field: "minute", reason: "the step in \"*/0\" must be at least 1"))
        XCTAssertEqual(error("*/x * * * *")?.field, "minute")
        XCTAssertEqual(error("5-1 * * * *"), .invalid(field: "minute", reason: "the range \"5-1\" goes backwards (5 is after 1)"))
        XCTAssertEqual(error("1,,2 * * * *")?.field, "minute")
        XCTAssertEqual(error("-1 * * * *")?.field, "minute")
        XCTAssertEqual(error("* * * *"), .fieldCount(4))
        XCTAssertEqual(error("* * * * * *"), .fieldCount(6))
        XCTAssertEqual(error("  "), .empty)
        XCTAssertTrue(CronError.fieldCount(4).description.contains("minute hour day-of-month month day-of-week"))
        XCTAssertEqual(CronError.invalid(field: "hour", reason: "24 is out of range 0-23").description, "hour: 24 is out of range 0-23")
    }

    func testAnImpossibleDateNeverRunsAndLeapDaysAreFound() throws {
        let utc = try zone("UTC")
        XCTAssertNil(try CronExpression(parsing: "0 0 30 2 *").nextRun(after: at("2026-01-01T00:00:00Z"), in: utc))
        XCTAssertFalse(try CronExpression(parsing: "0 0 31 4,6 *").runsAtAll(after: at("2026-01-01T00:00:00Z"), in: utc))
        // February 29th: the next is in 2028; from 2096 on, past 2100 (not a leap year), 2104.
        XCTAssertEqual(try CronExpression(parsing: "0 0 29 2 *").nextRun(after: at("2026-01-01T00:00:00Z"), in: utc),
                       at("2028-02-29T00:00:00Z"))
        XCTAssertEqual(try CronExpression(parsing: "0 0 29 2 *").nextRun(after: at("2096-03-01T00:00:00Z"), in: utc),
                       at("2104-02-29T00:00:00Z"))
    }

    // MARK: Daylight-saving changes (fixed clock)

    /// Paris springs forward on 2026-03-29 at 02:00 CET (01:00Z) to 03:00 CEST: 02:00–02:59
    /// local do not exist. A daily 02:30 runs once that day, at 03:00 CEST; the slots of
    /// `*/15` inside the gap are one run at 03:00, and 03:00's own slot is that same run.
    func testParisSpringForward() throws {
        XCTAssertEqual(try runs("30 2 * * *", after: "2026-03-27T12:00:00Z", in: "Europe/Paris", count: 3), [
            at("2026-03-28T02:30:00+01:00"),
            at("2026-03-29T03:00:00+02:00"),  // 02:30 does not exist: the first valid instant after it
            at("2026-03-30T02:30:00+02:00"),
        ])
        XCTAssertEqual(try runs("*/15 * * * *", after: "2026-03-29T01:40:00+01:00", in: "Europe/Paris", count: 4), [
            at("2026-03-29T01:45:00+01:00"),
            at("2026-03-29T03:00:00+02:00"),  // 02:00, 02:15, 02:30, 02:45 and 03:00: once
            at("2026-03-29T03:15:00+02:00"),
            at("2026-03-29T03:30:00+02:00"),
        ])
    }

    /// Paris falls back on 2026-10-25 at 03:00 CEST (01:00Z) to 02:00 CET: 02:00–02:59 local
    /// happen twice. A daily 02:30 runs once, at the first (CEST); hourly runs skip the second
    /// pass of the repeated hour.
    func testParisFallBack() throws {
        XCTAssertEqual(try runs("30 2 * * *", after: "2026-10-24T12:00:00Z", in: "Europe/Paris", count: 2), [
            at("2026-10-25T02:30:00+02:00"),
            at("2026-10-26T02:30:00+01:00"),
        ])
        XCTAssertEqual(try runs("0 * * * *", after: "2026-10-25T00:30:00+02:00", in: "Europe/Paris", count: 4), [
            at("2026-10-25T01:00:00+02:00"),
            at("2026-10-25T02:00:00+02:00"),
            at("2026-10-25T03:00:00+01:00"),  // 02:00 CET (the second 02:00) does not run again
            at("2026-10-25T04:00:00+01:00"),
        ])
        // Asked from inside the second pass: the next is after the repeated hour.
        XCTAssertEqual(try runs("*/20 * * * *", after: "2026-10-25T02:05:00+01:00", in: "Europe/Paris", count: 1),
                       [at("2026-10-25T03:00:00+01:00")])
    }

    /// New York springs forward on 2026-03-08 at 02:00 EST to 03:00 EDT.
    func testNewYorkSpringForward() throws {
        XCTAssertEqual(try runs("30 2 * * *", after: "2026-03-07T12:00:00Z", in: "America/New_York", count: 3), [
            at("2026-03-08T03:00:00-04:00"),
            at("2026-03-09T02:30:00-04:00"),
            at("2026-03-10T02:30:00-04:00"),
        ])
        XCTAssertEqual(try runs("0 * * * *", after: "2026-03-08T00:30:00-05:00", in: "America/New_York", count: 3), [
            at("2026-03-08T01:00:00-05:00"),
            at("2026-03-08T03:00:00-04:00"),  // 02:00 does not exist; 03:00 is the same instant: one run
            at("2026-03-08T04:00:00-04:00"),
        ])
    }

    /// New York falls back on 2026-11-01 at 02:00 EDT to 01:00 EST: 01:00–01:59 happen twice.
    func testNewYorkFallBack() throws {
        XCTAssertEqual(try runs("30 1 * * *", after: "2026-10-31T12:00:00Z", in: "America/New_York", count: 2), [
            at("2026-11-01T01:30:00-04:00"),
            at("2026-11-02T01:30:00-05:00"),
        ])
        XCTAssertEqual(try runs("*/30 * * * *", after: "2026-11-01T00:45:00-04:00", in: "America/New_York", count: 4), [
            at("2026-11-01T01:00:00-04:00"),
            at("2026-11-01T01:30:00-04:00"),
            at("2026-11-01T02:00:00-05:00"),  // the second 01:00 and 01:30 (EST) do not run
            at("2026-11-01T02:30:00-05:00"),
        ])
    }

    /// `lastRun` finds the most recent slot of a downtime (what `catch_up: last` runs).
    func testLastRunOfADowntime() throws {
        let expression = try CronExpression(parsing: "0 */6 * * *")
        let utc = try zone("UTC")
        XCTAssertEqual(expression.lastRun(atOrBefore: at("2026-01-02T13:00:00Z"), notBefore: at("2026-01-01T00:00:00Z"), in: utc),
                       at("2026-01-02T12:00:00Z"))
        XCTAssertEqual(expression.lastRun(atOrBefore: at("2026-01-02T12:00:00Z"), notBefore: at("2026-01-02T12:00:00Z"), in: utc),
                       at("2026-01-02T12:00:00Z"))
        XCTAssertNil(expression.lastRun(atOrBefore: at("2026-01-02T11:00:00Z"), notBefore: at("2026-01-02T07:00:00Z"), in: utc))
    }
}
