import ConfineTestSupport
import Foundation
import Glibc
@testable import Sandbox
import Testing

/// Every live sandbox maps its root to a host id of its own, so that what the kernel counts per
/// user (pipe buffer pages, epoll watches, processes) is counted per sandbox.
@Suite("Host ids per sandbox", .enabled(if: TestSupport.canSandbox))
struct HostIDTests {
    @Test("Sandboxes alive at once run as distinct host uids and gids from the range; ids come back when they end")
    func distinctIDs() async throws {
        let sandbox = try Sandbox()
        let policy = try TestSupport.policy()
        let marker = "sleep 29.\(Int.random(in: 100_000...999_999))"
        var runs: [SpawnerTests.Background] = []
        for i in 0..<3 {
            runs.append(try SpawnerTests.Background(sandbox, RunRequest(
                policy: policy, command: ["/bin/bash", "-c", "echo ready-\(i); exec \(marker)"])))
        }
        var uids: Set<UInt32> = []
        for (i, run) in runs.enumerated() { #expect(try await run.wait(for: "ready-\(i)")) }
        let pids = TestSupport.hostProcesses(containing: marker)
        #expect(pids.count == 3, "\(pids)")
        for pid in pids {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { continue }
            func id(_ key: String) -> UInt32? {
                status.split(separator: "\n").first { $0.hasPrefix(key) }?
                    .split(whereSeparator: \.isWhitespace).dropFirst().first.flatMap { UInt32($0) }
            }
            let uid = try #require(id("Uid:")), gid = try #require(id("Gid:"))
            #expect(SandboxConfiguration().hostIDs.contains(uid), "uid \(uid)")
            #expect(uid == gid)
            uids.insert(uid)
        }
        #expect(uids.count == 3, "\(uids)")
        #expect(uids.allSatisfy(sandbox.hostIDs.isHeld))
        runs.forEach { $0.handle.cancel() }
        for run in runs { _ = await run.handle.result() }
        sandbox.shutdown()
        // A result is out before its init is reaped: the ids come back right after.
        for _ in 0..<100 where uids.contains(where: sandbox.hostIDs.isHeld) { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!uids.contains(where: sandbox.hostIDs.isHeld))
    }

    @Test("Every Sandbox of a process with the same range shares one allocator: no two of them hand out one id")
    func oneAllocatorPerRange() throws {
        let a = HostIDs.shared(0x7100_0000...0x7100_0001), b = HostIDs.shared(0x7100_0000...0x7100_0001)
        #expect(a === b)
        let x = try #require(a.take()), y = try #require(b.take())
        #expect(x != y && (0x7100_0000...0x7100_0001).contains(x) && (0x7100_0000...0x7100_0001).contains(y))
        #expect(a.take() == nil, "both ids are held")
        b.give(x)
        #expect(a.take() == x)
        a.give(x)
        a.give(y)
    }
}

/// The limits of the host-id range, and an init the kernel will not create in a given cgroup.
@Suite("Host ids and placement: refusals", .enabled(if: TestSupport.canSandbox))
struct HostIDRefusalTests {
    @Test("Every host id of the range held: a launch fails naming the range's keys, and works again once one is back")
    func rangeExhausted() async throws {
        var configuration = SandboxConfiguration()
        configuration.warmPoolSize = 0
        configuration.hostIDFirst = 0x7200_0000 + UInt32.random(in: 0..<1000) * 2
        configuration.hostIDCount = 1
        let sandbox = try Sandbox(configuration: configuration)
        defer { sandbox.shutdown() }
        let holder = try SpawnerTests.Background(sandbox, RunRequest(policy: try TestSupport.policy(), command: ["/bin/bash", "-c", "echo held; exec sleep 30"]))
        #expect(try await holder.wait(for: "held"))
        let refused = try await sandbox.run(RunRequest(policy: try TestSupport.policy(), command: ["/bin/true"]))
        #expect(refused.verdict == .setupFailed)
        let failure = try #require(refused.setupFailure)
        #expect(failure.stage == "take a host id for the sandbox", "\(failure)")
        #expect(failure.subject?.contains("sandbox_id_count") == true, "\(failure)")
        holder.handle.cancel()
        _ = await holder.handle.result()
        for _ in 0..<100 where sandbox.hostIDs.isHeld(configuration.hostIDFirst) { try await Task.sleep(for: .milliseconds(20)) }
        let again = try await sandbox.run(RunRequest(policy: try TestSupport.policy(), command: ["/bin/true"]))
        #expect(again.verdict == .exited, "\(again.summary)")
    }

    @Test("A range past the largest id is refused by the Sandbox, naming the keys (the configuration reads it without wrapping around)")
    func rangePastTheTop() throws {
        var configuration = SandboxConfiguration()
        configuration.hostIDFirst = 4_294_967_000
        configuration.hostIDCount = 65_536
        #expect(configuration.hostIDs.upperBound == UInt32.max)
        #expect {
            _ = try Sandbox(configuration: configuration)
        } throws: { error in
            "\(error)".contains("sandbox_id_first") && "\(error)".contains("sandbox_id_count")
        }
    }

    @Test("A cgroup directory the kernel will not put init into (here not a cgroup at all): init is cloned as before, and the reply says why")
    func intoCgroupRefused() throws {
        let sandbox = try TestSupport.sandbox(warmPoolSize: 0)
        defer { sandbox.shutdown() }
        let policy = try TestSupport.policy()
        let plan = try sandbox.plan(for: SandboxImage(policy: policy, configuration: sandbox.configuration),
                                    seccomp: try SeccompProgram.compile(policy.seccomp))
        let notACgroup = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try #require(notACgroup >= 0)
        defer { close(notACgroup) }
        let spawned = try sandbox.spawner.spawn(plan, cgroupDirectory: notACgroup)
        #expect(spawned.pid > 0)
        #expect(!spawned.bornInCgroup)
        #expect(spawned.intoCgroupErrno != 0, "the kernel's refusal comes back with the reply")
        // The init made without a cgroup: kill and reap it, close what came back.
        kill(spawned.pid, SIGKILL)
        var status: Int32 = 0
        #expect(waitpid(spawned.pid, &status, __WALL) == spawned.pid)
        for fd in [spawned.pidfd, spawned.stdin, spawned.stdout, spawned.stderr, spawned.control, spawned.report] { close(fd) }
    }
}
