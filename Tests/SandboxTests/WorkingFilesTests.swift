import Foundation
import Sandbox
import Testing

/// Input files written into the working directory before the program starts, and output files
/// collected from it after the program ends (whatever the verdict): only regular files matching
/// the patterns, never through a symbolic link, never outside the working directory, within
/// the byte budget.
@Suite("Working directory files", .enabled(if: TestSupport.canSandbox))
struct WorkingFilesTests {
    func run(_ script: String, inputs: [SandboxFile] = [], patterns: [String], maxBytes: Int = 1 << 20,
             adjust: (inout Policy) -> Void = { _ in }) async throws -> RunResult {
        var policy = try TestSupport.policy()
        adjust(&policy)
        var request = RunRequest(policy: policy, command: ["/bin/bash", "-c", script])
        request.workingFiles = inputs
        request.outputs = OutputCollection(patterns: patterns, maxBytes: maxBytes)
        return try await TestSupport.sandbox.run(request)
    }

    @Test("Inputs arrive in the working directory; matching regular files come back; links, folders, others and the oversize are skipped with why")
    func roundTrip() async throws {
        let script = """
            cat in/data.txt > copy.txt
            mkdir -p plots deep/a && head -c 3000 /dev/urandom > plots/p1.png && printf 'two' > plots/p2.png
            printf '{"ok":true}' > result.json
            ln -s /etc/passwd plots/evil.png; ln -s ../../etc plots/up.png
            mkfifo plots/pipe.png; mkdir plots/dir.png
            head -c 5000 /dev/zero > big.bin
            echo never > other.txt
            """
        let result = try await run(script, inputs: [SandboxFile(path: "in/data.txt", contents: Array("input\n".utf8))],
                                   patterns: ["copy.txt", "result.json", "plots/*.png", "big.bin", "missing.txt"], maxBytes: 4000)
        #expect(result.verdict == .exited && result.exitCode == 0, "\(result.summary) \(String(decoding: result.stderr, as: UTF8.self))")
        let files = Dictionary(uniqueKeysWithValues: result.artifacts.map { ($0.path, $0.contents) })
        #expect(files["copy.txt"] == Array("input\n".utf8))
        #expect(files["result.json"] == Array(#"{"ok":true}"#.utf8))
        #expect(files["plots/p2.png"] == Array("two".utf8))
        #expect(files["plots/p1.png"]?.count == 3000)
        #expect(files["other.txt"] == nil && files["big.bin"] == nil && files["plots/evil.png"] == nil)
        let skipped = Dictionary(uniqueKeysWithValues: result.skippedArtifacts.map { ($0.path, $0.reason) })
        #expect(skipped["plots/evil.png"]?.contains("symbolic link") == true, "\(skipped)")
        #expect(skipped["plots/up.png"]?.contains("symbolic link") == true, "\(skipped)")
        #expect(skipped["plots/pipe.png"]?.contains("not a regular file") == true, "\(skipped)")
        #expect(skipped["plots/dir.png"]?.contains("directory") == true, "\(skipped)")
        #expect(skipped["big.bin"]?.contains("too large") == true, "\(skipped)")
    }

    @Test("Collected whatever the verdict: after a wall-time kill")
    func afterAKill() async throws {
        let result = try await run("echo partial > progress.log; sleep 30", patterns: ["*.log"]) { policy in
            policy.limits.wallTimeMs = 500
        }
        #expect(result.verdict == .wallTimeout)
        #expect(result.artifacts.map(\.path) == ["progress.log"] && result.artifacts.first?.contents == Array("partial\n".utf8))
    }
}
