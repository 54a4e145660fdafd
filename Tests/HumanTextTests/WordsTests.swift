import Glibc
import Testing
@testable import HumanText

/// The text helpers every layer shares: "did you mean", errno and signal names, quoting and
/// the durations with days of the server's configuration.
@Suite("Words")
struct WordsTests {
    @Test func typosAreSuggested() {
        #expect(Suggestions.closest(to: "memroy", in: ["memory", "processes"]) == "memory")
        #expect(Suggestions.closest(to: "deny_netwrok", in: ["network", "filesystem"]) == "network")
        #expect(Suggestions.closest(to: "banana", in: ["memory", "processes"]) == nil)
        #expect(Suggestions.didYouMean("concurency", in: ["concurrency", "policy"]) == #" (did you mean "concurrency"?)"#)
        #expect(Suggestions.didYouMean("zzzzzz", in: ["concurrency", "policy"]) == "")
    }

    @Test func transpositionsCountOnce() {
        #expect(Suggestions.distance("ab", "ba") == 1)
        #expect(Suggestions.distance("", "abc") == 3)
        #expect(Suggestions.distance("kitten", "sitting") == 3)
    }

    @Test func errnoValuesHaveTheirNames() {
        #expect(ErrnoName.describe(ENOENT).hasPrefix("ENOENT ("))
        #expect(ErrnoName.describe(4242).hasPrefix("errno 4242 ("))
        #expect(ErrnoName.value(of: "EPERM") == EPERM)
        #expect(ErrnoName.value(of: "ENOTHING") == nil)
    }

    @Test func signalsHaveTheirNames() {
        #expect(SignalName.name(SIGKILL) == "SIGKILL")
        #expect(SignalName.name(SIGXCPU) == "SIGXCPU")
        #expect(SignalName.name(64) == "signal 64")
    }

    @Test func quotingShowsWhatIsInvisible() {
        #expect(Quoting.doubleQuoted("plain") == #""plain""#)
        #expect(Quoting.doubleQuoted("a\"b\\c\n") == #""a\"b\\c\n""#)
        #expect(Quoting.doubleQuoted("\u{7f}\u{feff}") == #""\u007f\ufeff""#)
        #expect(HumanUnits.quoted("x") == Quoting.doubleQuoted("x"))
    }

    @Test func configurationDurationsAcceptDays() throws {
        #expect(try HumanUnitsText.milliseconds("30d") == 30 * 86_400_000)
        #expect(try HumanUnitsText.milliseconds(" 1.5d ") == 129_600_000)
        #expect(try HumanUnitsText.milliseconds("90s") == 90_000)
        #expect(throws: HumanUnits.ParseError.self) { try HumanUnitsText.milliseconds("soon") }
        #expect(throws: HumanUnits.ParseError.self) { try HumanUnitsText.milliseconds("-1d") }
    }
}

/// The one rule of the strict readers: an unknown key is refused with a suggestion or the list.
@Suite("KnownKeys")
struct KnownKeysTests {
    let keys = KnownKeys(["name", "script_type", "concurrency"])

    @Test func knownKeysPass() {
        #expect(keys.contains("name"))
        #expect(!keys.contains("Name"))
        #expect(keys.unknown(in: ["name", "concurency", "x"]) == ["concurency", "x"])
    }

    @Test func aTypoIsNamedWithItsFix() {
        #expect(keys.refusal(of: "concurency") == #"unknown key (did you mean "concurrency"?); keys are name, script_type, concurrency"#)
        #expect(keys.refusal(of: "concurency", noun: "field", shown: #""body.concurency""#, listing: "the fields are")
                == #"unknown field "body.concurency" (did you mean "concurrency"?); the fields are name, script_type, concurrency"#)
    }

    @Test func aStrangerGetsTheList() {
        #expect(keys.suggestion(for: "banana") == "")
        #expect(keys.refusal(of: "banana") == "unknown key; keys are name, script_type, concurrency")
        #expect(keys.list == "name, script_type, concurrency")
    }
}
