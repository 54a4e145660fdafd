import Foundation
import Glibc
@testable import Sandbox
import Testing

/// /dev read-only, a per-sandbox /dev/shm counted in the memory limit, read-only binds
/// read-only all the way down, and the launch-plan cache bounded.
@Suite("Devices and mounts", .enabled(if: TestSupport.canSandbox))
struct DeviceAndMountTests {
    static func mtime(_ path: String) -> timespec {
        var info = stat()
        _ = stat(path, &info)
        return info.st_mtim
    }

    @Test("/dev is read-only: touch /dev/null fails and the host's node keeps its times; writing to /dev/null still works")
    func devReadOnly() async throws {
        let before = Self.mtime("/dev/null")
        let r = try await TestSupport.bash("touch /dev/null; echo touch=$?; echo x > /dev/null; echo write=$?; chmod 600 /dev/zero; echo chmod=$?; mknod /dev/x c 1 3; echo mknod=$?")
        #expect(r.out.contains("touch=1") && r.out.contains("write=0") && r.out.contains("chmod=1") && r.out.contains("mknod=1"),
                "\(r.out) \(r.err)")
        let after = Self.mtime("/dev/null")
        #expect(before.tv_sec == after.tv_sec && before.tv_nsec == after.tv_nsec, "the host's /dev/null was touched")
    }

    @Test("Python multiprocessing (Lock, Pool) works under the default policy: /dev/shm is a tmpfs of the sandbox")
    func multiprocessingWorks() async throws {
        let r = try await TestSupport.python("""
            import multiprocessing as mp, os
            lock = mp.Lock()
            with lock:
                pass
            with mp.Pool(2) as pool:
                print(sum(pool.map(abs, range(-5, 5))))
            print(os.statvfs("/dev/shm").f_blocks > 0)
            """) { $0.limits.wallTimeMs = 30_000 }
        #expect(r.verdict == .exited && r.exitCode == 0 && r.out == "25\nTrue\n", "\(r.summary) \(r.out) \(r.err)")
    }

    @Test("/dev/shm counts in the memory limit: filling it past the limit ends the run as memory_limit")
    func devShmCounted() async throws {
        let r = try await TestSupport.bash("head -c 60000000 /dev/zero > /dev/shm/fill; echo written=$?; sleep 1") {
            $0.limits.memoryBytes = 24 << 20
        }
        #expect(r.verdict == .memoryLimit || !r.out.contains("written=0"), "\(r.summary) \(r.out) \(r.err)")
        if r.verdict != .memoryLimit { #expect(r.memoryPeakBytes ?? 0 <= 25 << 20) }
    }

    @Test("A read-only bind of a tree with a writable submount is read-only all the way down")
    func recursiveReadOnly() async throws {
        let base = "/tmp/confine-rotest-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: base + "/sub", withIntermediateDirectories: true)
        guard mount("tmpfs", base + "/sub", "tmpfs", 0, "size=1m") == 0 else {
            print("SKIP recursive read-only binds: cannot mount a tmpfs on the host (errno \(errno))")
            try? FileManager.default.removeItem(atPath: base)
            return
        }
        defer {
            umount2(base + "/sub", Int32(MNT_DETACH))
            try? FileManager.default.removeItem(atPath: base)
        }
        #expect(FileManager.default.createFile(atPath: base + "/sub/host-wrote", contents: Data("x".utf8)), "the submount is writable on the host")
        let r = try await TestSupport.bash("cat /data/sub/host-wrote; echo; touch /data/sub/new; echo sub=$?; touch /data/new; echo top=$?") {
            $0.filesystem.readOnly.append(BindMount(source: base, target: "/data"))
        }
        #expect(r.out.hasPrefix("x\n") && r.out.contains("sub=1") && r.out.contains("top=1"), "\(r.summary) \(r.out) \(r.err)")
        #expect(!FileManager.default.fileExists(atPath: base + "/sub/new"))
    }

    @Test("The launch-plan cache is bounded: more distinct images than it holds keep at most maxPlans plans")
    func planCacheBounded() throws {
        let sandbox = TestSupport.sandbox
        var policy = try TestSupport.policy()
        for i in 0..<(Sandbox.maxPlans + 40) {
            policy.filesystem.tmpfs = [TmpfsMount(path: "/tmp", sizeBytes: UInt64(1 << 20) + UInt64(i) * 4096)]
            _ = try sandbox.plan(for: SandboxImage(policy: policy, configuration: sandbox.configuration), seccomp: nil)
        }
        #expect(sandbox.cachedPlanCount <= Sandbox.maxPlans)
    }
}
