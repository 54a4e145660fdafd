import Glibc
import Sandbox
import Testing

/// The verdict of a run from what was seen of its end, without any process: the order of the
/// rules is the contract (the first that applies wins).
@Suite("Verdict classification")
struct VerdictClassificationTests {
    @Test func aCleanExitIsExited() {
        #expect(RunVerdict.classify(RunEnding()) == .exited)
        #expect(RunVerdict.classify(RunEnding(exitReported: true)) == .exited)
    }

    @Test func aSetupReportWinsOverEverything() {
        let ending = RunEnding(setupReported: true, kill: .wall, signal: SIGKILL, cpuLimitReached: true, oomKills: 3)
        #expect(RunVerdict.classify(ending) == .setupFailed)
    }

    @Test func theSupervisorsKillsNameTheirLimit() {
        #expect(RunVerdict.classify(RunEnding(kill: .cancelled, signal: SIGKILL, oomKills: 1)) == .cancelled)
        #expect(RunVerdict.classify(RunEnding(kill: .wall, signal: SIGKILL, oomKills: 1)) == .wallTimeout)
        #expect(RunVerdict.classify(RunEnding(kill: .cpu, signal: SIGKILL, oomKills: 1)) == .cpuTimeout)
        #expect(RunVerdict.classify(RunEnding(kill: .output, signal: SIGKILL)) == .outputLimit)
    }

    @Test func cpuTimeIsRecognisedByItsSignals() {
        #expect(RunVerdict.classify(RunEnding(signal: SIGXCPU)) == .cpuTimeout)
        #expect(RunVerdict.classify(RunEnding(signal: SIGKILL, cpuLimitReached: true)) == .cpuTimeout)
        // A SIGKILL before the CPU limit is someone else's.
        #expect(RunVerdict.classify(RunEnding(signal: SIGKILL, cpuLimitReached: false)) == .signaled)
    }

    @Test func anOOMKillIsTheMemoryLimitEvenWhenOutputOverflowed() {
        #expect(RunVerdict.classify(RunEnding(signal: SIGKILL, oomKills: 1)) == .memoryLimit)
        #expect(RunVerdict.classify(RunEnding(kill: .output, signal: SIGKILL, oomKills: 1)) == .memoryLimit)
        // The program survived its OOM-killed child and exited by itself: still the limit's doing.
        #expect(RunVerdict.classify(RunEnding(oomKills: 2)) == .memoryLimit)
    }

    @Test func otherSignalsAreSignaled() {
        #expect(RunVerdict.classify(RunEnding(signal: SIGSEGV)) == .signaled)
        #expect(RunVerdict.classify(RunEnding(signal: SIGTERM)) == .signaled)
    }

    @Test func initEndingWithoutAReportIsASetupFailure() {
        #expect(RunVerdict.classify(RunEnding(exitReported: false)) == .setupFailed)
        // A killed run has no exit report either, but its kill names the verdict.
        #expect(RunVerdict.classify(RunEnding(kill: .wall, signal: SIGKILL, exitReported: false)) == .wallTimeout)
    }
}
