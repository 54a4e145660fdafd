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
        let a = HostIDs.shared(first: 0x7100_0000, count: 2), b = HostIDs.shared(first: 0x7100_0000, count: 2)
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
