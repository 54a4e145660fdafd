import Glibc
import Sandbox
import Testing

/// The program's process is made while its sandbox waits for a run, and arms itself then:
/// session, capabilities, no_new_privs and — when the policy's filter permits what it calls
/// afterwards — the seccomp filter. Whichever way, the program starts the same.
@Suite("The program's process, made ahead", .enabled(if: TestSupport.canSandbox))
struct ProgramArmingTests {
    @Test func theFilterLoadsEarlyOnlyWhenItPermitsWhatTheWaitingProgramCalls() throws {
        for name in ["default", "networked", "strict"] {
            #expect(SeccompProgram.permitsWaitingProgram(try TestSupport.policy(name).seccomp), "\(name)")
        }
        for call in ["read", "write", "prlimit64", "execve", "exit_group"] {
            var refusing = try TestSupport.policy().seccomp
            refusing.deny = [call]
            #expect(!SeccompProgram.permitsWaitingProgram(refusing), "a policy denying \(call)")
            refusing.mode = .denyList
            #expect(!SeccompProgram.permitsWaitingProgram(refusing), "a deny-list policy denying \(call)")
        }
        var denyList = try TestSupport.policy().seccomp
        denyList.mode = .denyList
        #expect(SeccompProgram.permitsWaitingProgram(denyList))
    }

    /// Three runs each (the first builds its sandbox, later ones may take a warm one): the
    /// run's rlimits, no capabilities, no_new_privs, the filter, its own session, the workdir.
    @Test("A program armed early or late starts the same", arguments: [[], ["prlimit64"]])
    func armedEitherWay(deny: [String]) async throws {
        let sandbox = try Sandbox()
        var policy = try TestSupport.policy()
        policy.seccomp.deny = deny
        let script = "cat /proc/self/limits /proc/self/status; pwd; ps -o sid= -p $$"
        for round in 1...3 {
            let r = try await sandbox.run(RunRequest(policy: policy, command: ["/bin/bash", "-c", script]))
            let out = String(decoding: r.stdout, as: UTF8.self)
            #expect(r.verdict == .exited && r.exitCode == 0, "round \(round): \(r.summary) \(String(decoding: r.stderr, as: UTF8.self))")
            let openFiles = out.split(separator: "\n").first { $0.hasPrefix("Max open files") }?
                .split(separator: " ", omittingEmptySubsequences: true)
            #expect(openFiles?.count ?? 0 >= 5 && openFiles?[3] == "256" && openFiles?[4] == "256", "round \(round): \(out)")
            #expect(out.contains("CapEff:\t0000000000000000"), "round \(round)")
            #expect(out.contains("NoNewPrivs:\t1"), "round \(round)")
            #expect(out.contains("Seccomp:\t2"), "round \(round)")
            #expect(out.contains("\n/tmp\n"), "round \(round): the workdir")
            // bash is pid 2, in the session it made for itself.
            #expect(out.hasSuffix("      2\n") || out.hasSuffix(" 2\n"), "round \(round): \(out)")
            try await Task.sleep(for: .milliseconds(100))  // time for the pool to refill
        }
    }

    /// A filter loaded late still refuses what it must: the program's own prlimit64 fails.
    @Test func aLateFilterStillRefuses() async throws {
        let r = try await TestSupport.bash("ulimit -n 10 && echo lowered || echo refused") { $0.seccomp.deny = ["prlimit64"] }
        #expect(r.verdict == .exited)
        #expect(String(decoding: r.stdout, as: UTF8.self) == "refused\n")
    }

    /// A workdir the root does not have fails the run with the stage that names it.
    @Test func aMissingWorkdirIsReported() async throws {
        let r = try await TestSupport.bash("true") { $0.filesystem.workdir = "/nowhere" }
        #expect(r.verdict == .setupFailed)
        #expect(r.setupFailure?.stage == "chdir to workdir", "\(r.summary)")
    }
}
