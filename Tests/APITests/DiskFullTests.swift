import Foundation
import Glibc
import Testing

/// The database's disk fills up: submissions are refused with 503 and the reason, a running
/// execution still ends with what could be kept, nothing stored is damaged, and the service
/// takes new work again by itself once there is room.
@Suite("A full database disk")
struct DiskFullTests {
    @Test("503 disk-full on submission, /ready says why, the running execution ends with what was kept, recovery without restart")
    func fullDisk() async throws {
        guard let disk = SmallDisk(megabytes: 16) else { return }
        defer { disk.remove() }
        try await LiveServer.with({
            $0.database = disk.path + "/confine.sqlite"
            $0.diskReserveBytes = 2 << 20
        }) { s in
            // Stored before the disk fills.
            let quick = try await s.job("df-quick", "bash", "echo stored before", extra: #", "concurrency": "allow""#)
            let before = try await s.post("/executions/\(quick)/run?wait=true")
            #expect(before.object["status"] as? String == "SUCCESS", "\(before)")
            let beforeID = try #require(before.object["id"] as? Int)
            let writer = try await s.job("df-writer", "bash", #"i=0; while true; do i=$((i+1)); echo "line $i"; sleep 0.02; done"#)
            let running = try #require(try await s.post("/executions/\(writer)/run").object["execution_id"] as? Int)
            var partial = 0
            for _ in 0..<600 where partial == 0 {
                let e = try await s.get("/executions/\(running)").object
                if e["status"] as? String == "RUNNING" { partial = e["stdout_bytes"] as? Int ?? 0 }
                if partial == 0 { try await Task.sleep(for: .milliseconds(50)) }
            }
            try #require(partial > 0, "the writer never showed partial output")

            // The disk fills. The first write that needs room finds it full (a submission, or the
            // writer's partial output); from then on submissions are refused.
            let filler = try disk.fill()
            let stdin = String(repeating: "x", count: 64 << 10)
            var refused: HTTPAnswer?
            for _ in 0..<200 where refused == nil {
                let answer = try await s.post("/executions/\(quick)/run", #"{"stdin": "\#(stdin)"}"#)
                if answer.status == 503 { refused = answer } else { #expect(answer.status == 200, "\(answer)") }
            }
            let problem = try #require(refused, "no submission was refused on a full disk")
            problem.expectProblem(503, "the database's disk is full", disk.path, "refused until space is freed")
            #expect(problem.object["type"] as? String == "https://confine.dev/problems/disk-full")
            #expect(problem.headers["retry-after"] != nil)
            let ready = try await s.get("/ready")
            ready.expectProblem(503, "disk is full")
            #expect(((ready.object["checks"] as? [String: Any])?["store"] as? String)?.contains("disk is full") == true, "\(ready)")

            // The running execution ends, with the output that could be kept: the start of what it
            // wrote, line after line, and every byte counted.
            try await s.post("/executions/\(running)/cancel")
            let ended = try await s.waitFinal(running)
            #expect(ended["status"] as? String == "CANCELLED", "\(ended)")
            let stdout = ended["stdout"] as? String ?? ""
            let lines = stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            #expect(!lines.isEmpty && lines.enumerated().allSatisfy { $0.element == "line \($0.offset + 1)" }, "\(stdout.suffix(200))")
            #expect((ended["stdout_bytes"] as? Int ?? 0) >= stdout.utf8.count)
            if (ended["stdout_bytes"] as? Int ?? 0) > stdout.utf8.count {
                #expect(ended["stdout_truncated"] as? Bool == true)
                #expect((ended["reason"] as? String)?.contains("disk was full") == true, "\(ended)")
            }

            // Space returns: submissions are taken again, without a restart.
            try FileManager.default.removeItem(atPath: filler)
            var accepted: HTTPAnswer?
            for _ in 0..<200 where accepted == nil {
                let answer = try await s.post("/executions/\(quick)/run?wait=true")
                if answer.status == 200 { accepted = answer } else { try await Task.sleep(for: .milliseconds(50)) }
            }
            let after = try #require(accepted, "submissions were still refused after space returned")
            #expect(after.object["status"] as? String == "SUCCESS", "\(after)")
            #expect(try await s.get("/ready").status == 200)

            // Nothing stored was damaged.
            let again = try await s.get("/executions/\(beforeID)").object
            #expect(again["stdout"] as? String == "stored before\n" && again["status"] as? String == "SUCCESS", "\(again)")
            #expect(try await s.sqlite?.integrityProblems() == [])
        }
    }
}

/// A small tmpfs mounted for one test, or nil (with the reason printed) where mounting is not
/// permitted.
struct SmallDisk {
    let path: String

    init?(megabytes: Int) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("confine-small-disk-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard mount("tmpfs", path, "tmpfs", 0, "size=\(megabytes)m,mode=0700") == 0 else {
            let reason = String(cString: strerror(errno))
            rmdir(path)
            print("skipped: mounting a \(megabytes) MiB tmpfs for the database is not permitted here (\(reason))")
            return nil
        }
        self.path = path
    }

    /// Writes a file until the disk has no room left; returns its path.
    func fill() throws -> String {
        let file = path + "/filler"
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw TestFailure("cannot create \(file): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let block = [UInt8](repeating: 0x66, count: 1 << 16)
        while true {
            let n = block.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n > 0 { continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == ENOSPC { return file }
            throw TestFailure("filling \(file): \(n < 0 ? String(cString: strerror(errno)) : "wrote nothing")")
        }
    }

    func remove() {
        umount2(path, Int32(MNT_DETACH))
        rmdir(path)
    }
}
