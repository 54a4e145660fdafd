import Domain
import Engine
import Foundation
import Sandbox
import Store
import Testing

/// The engine's word for a sandbox's result, without processes.
@Suite("Verdict mapping")
struct VerdictMappingTests {
    @Test(arguments: RunVerdict.allCases)
    func everySandboxVerdictKeepsItsWireName(verdict: RunVerdict) {
        #expect(ExecutionVerdict(verdict).rawValue == verdict.rawValue)
    }

    @Test func onlyInterruptedIsTheServicesOwn() {
        let mapped = Set(RunVerdict.allCases.map(ExecutionVerdict.init))
        #expect(Set(ExecutionVerdict.allCases).subtracting(mapped) == [.interrupted])
    }

    @Test func anOutcomeCarriesTheResult() {
        let at = Date(timeIntervalSince1970: 1_000)
        let result = RunResult(verdict: .memoryLimit, signal: 9, wallMs: 12, cpuMs: 7, memoryPeakBytes: 1 << 20,
                               stdout: Array("out".utf8), stderr: Array("err".utf8), stdoutBytes: 3, stderrBytes: 5,
                               stderrTruncated: true, oomKills: 1)
        let outcome = ExecutionOutcome(result, interrupted: false, finishedAt: at)
        #expect(outcome.verdict == .memoryLimit)
        #expect(outcome.status == .failed)
        #expect(outcome.signal == 9 && outcome.exitCode == nil && outcome.reason == nil)
        #expect(outcome.stdout == Data("out".utf8) && outcome.stderr == Data("err".utf8))
        #expect(outcome.stdoutBytes == 3 && outcome.stderrBytes == 5 && outcome.stderrTruncated && !outcome.stdoutTruncated)
        #expect(outcome.usage == ResourceUsage(wallMs: 12, cpuMs: 7, memoryPeakBytes: 1 << 20))
        #expect(outcome.finishedAt == at)
    }

    @Test func aSetupFailureSaysWhere() {
        let result = RunResult(verdict: .setupFailed, setupFailure: SetupFailure(stage: "mount", subject: "/usr", errno: 2))
        let outcome = ExecutionOutcome(result, interrupted: false)
        #expect(outcome.verdict == .setupFailed)
        #expect(outcome.reason?.hasPrefix("mount /usr: ENOENT") == true)
    }

    @Test func aShutdownsCancellationIsAnInterruption() {
        let outcome = ExecutionOutcome(RunResult(verdict: .cancelled), interrupted: true)
        #expect(outcome.verdict == .interrupted)
        #expect(outcome.reason == "the server shut down while this execution ran")
    }
}
