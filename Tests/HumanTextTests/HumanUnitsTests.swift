import Testing
@testable import HumanText

@Suite("HumanUnits")
struct UnitsTests {
    func bytes(_ s: String) throws -> UInt64 { try HumanUnits.parseBytes(s) }
    func ms(_ s: String) throws -> Int64 { try HumanUnits.parseMilliseconds(s) }

    func sizeError(_ s: String) -> String? {
        do { _ = try HumanUnits.parseBytes(s); return nil } catch { return error.message }
    }

    func durationError(_ s: String) -> String? {
        do { _ = try HumanUnits.parseMilliseconds(s); return nil } catch { return error.message }
    }

    static let KiB: UInt64 = 1024, MiB: UInt64 = 1024 * 1024, GiB: UInt64 = 1024 * 1024 * 1024

    static let sizes: [(String, UInt64)] = [
        ("256MiB", 256 * MiB), ("1GiB", GiB), ("512KiB", 512 * KiB), ("1.5GiB", 1_610_612_736),
        ("100MB", 100_000_000), ("5kB", 5_000), ("5KB", 5_000), ("2TiB", 2 * 1024 * GiB), ("1PB", 1_000_000_000_000_000),
        ("4096", 4096), ("0", 0), ("12B", 12), ("64Mi", 64 * MiB), ("1 GiB", GiB), ("  8mib ", 8 * MiB),
        (".5KiB", 512), ("1.1KiB", 1126), ("0.0001KiB", 0), ("0.0005KiB", 1),
    ]

    @Test(arguments: sizes)
    func sizesParse(text: String, expected: UInt64) throws {
        #expect(try bytes(text) == expected)
    }

    @Test func sizeMistakesAreExplained() {
        #expect(sizeError("lots") == "expected a size such as 256MiB or 1.5GiB, got \"lots\"")
        #expect(sizeError("64k")?.contains("ambiguous unit \"k\": write 64KiB (×1024) or 64kB (×1000)") == true)
        #expect(sizeError("1.5G")?.contains("1.5GiB") == true)
        #expect(sizeError("-1MiB") == "a size cannot be negative, got \"-1MiB\"")
        #expect(sizeError("1.5")?.contains("whole number") == true)
        #expect(sizeError("NaN") != nil)
        #expect(sizeError("inf") != nil)
        #expect(sizeError("1e9") != nil)
        #expect(sizeError("")?.contains("got nothing") == true)
        #expect(sizeError("8EiB")?.contains("unknown unit") == true)
        #expect(sizeError("8192PiB")?.contains("too large") == true)           // above Int64.max
        #expect(sizeError("99999999999999999999")?.contains("expected a size") == true)  // overflows while reading
        #expect(sizeError("1.0000000000000000001GiB") != nil)                // more than 18 decimals
    }

    static let durations: [(String, Int64)] = [
        ("10s", 10_000), ("1.5s", 1_500), ("500ms", 500), ("2m", 120_000), ("2min", 120_000), ("1h", 3_600_000),
        ("0.25h", 900_000), ("1.234s", 1_234), ("0s", 0), ("1 s", 1_000),
    ]

    @Test(arguments: durations)
    func durationsParse(text: String, expected: Int64) throws {
        #expect(try ms(text) == expected)
    }

    @Test func durationMistakesAreExplained() {
        #expect(durationError("10")?.contains("needs a unit: write 10s for seconds or 10ms for milliseconds") == true)
        #expect(durationError("1.5")?.contains("needs a unit") == true)
        #expect(durationError("-1s") == "a duration cannot be negative, got \"-1s\"")
        #expect(durationError("0.5ms")?.contains("not a whole number of milliseconds") == true)
        #expect(durationError("100us")?.contains("millisecond resolution") == true)
        #expect(durationError("1d")?.contains("unknown unit \"d\"") == true)
        #expect(durationError("nan") != nil)
        #expect(durationError("9999999999999999h")?.contains("too large") == true)
    }

    static let formattedSizes: [(UInt64, String)] = [
        (256 * MiB, "256MiB"), (1_610_612_736, "1.5GiB"), (100_000_000, "100MB"), (GiB, "1GiB"),
        (1536, "1.5KiB"), (1000, "1kB"), (0, "0B"), (1, "1B"), (1023, "1023B"), (1_288_490_189, "1288490189B"),
        (MiB + MiB / 4, "1.25MiB"),
    ]

    @Test(arguments: formattedSizes)
    func bytesFormat(value: UInt64, expected: String) throws {
        #expect(HumanUnits.formatBytes(value) == expected)
        #expect(try bytes(expected) == value)
    }

    static let formattedDurations: [(Int64, String)] = [
        (500, "500ms"), (1_500, "1.5s"), (10_000, "10s"), (120_000, "2m"), (3_600_000, "1h"), (90_000, "90s"),
        (1_234, "1.234s"), (1_050, "1.05s"), (0, "0ms"), (5_400_000, "90m"),
    ]

    @Test(arguments: formattedDurations)
    func millisecondsFormat(value: Int64, expected: String) throws {
        #expect(HumanUnits.formatMilliseconds(value) == expected)
        #expect(try ms(expected) == value)
    }

    @Test func formattingRoundTripsAcrossTheRange() throws {
        var generator = SystemRandomNumberGenerator()
        var samples: [UInt64] = [UInt64(Int64.max), 1 << 50, (1 << 50) + 1]
        for shift in 0..<63 {
            samples.append(UInt64(1) << UInt64(shift))
            samples.append(UInt64.random(in: 0...(UInt64(1) << UInt64(shift)), using: &generator))
        }
        for value in samples {
            #expect(try bytes(HumanUnits.formatBytes(value)) == value, "\(value) → \(HumanUnits.formatBytes(value))")
        }
        for _ in 0..<500 {
            let value = Int64.random(in: 0...(24 * 3_600_000), using: &generator)
            #expect(try ms(HumanUnits.formatMilliseconds(value)) == value)
        }
    }
}
