import ConfineTestSupport
import Foundation
import Testing

/// `outputs`: the files a program leaves in its working directory, collected after it ends
/// (whatever the verdict), listed with size and SHA-256 and downloaded byte for byte.
@Suite("Output files")
struct OutputFilesTests {
    /// SHA-256 hex of `data`, by the system's sha256sum (the test checks the server's digest
    /// with another implementation).
    static func sha256(_ data: Data) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("confine-sha-\(UUID().uuidString)")
        try data.write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [url.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try ProcessLaunch.run(process)
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: out, as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
    }

    @Test("Piston-style: a Python program in two files and an input file, run in one call with wait, writes a PNG-sized binary and a JSON file; both downloaded and compared byte for byte")
    func pistonStyle() async throws {
        try await LiveServer.with { s in
            let main = """
                import sys; sys.path.insert(0, "")
                import runpy; runpy.run_path("app/main.py", run_name="__main__")
                """
            let app = """
                import json, os
                from app import helper
                rows = [line.split(",") for line in open("data/in.csv").read().split()]
                os.makedirs("plots", exist_ok=True)
                with open("plots/chart.png", "wb") as f:
                    f.write(helper.png_bytes(int(rows[1][1])))
                with open("result.json", "w") as f:
                    json.dump({"rows": len(rows), "total": sum(int(r[1]) for r in rows[1:])}, f, sort_keys=True)
                print("done")
                """
            let helper = """
                def png_bytes(seed):
                    header = bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
                    return header + bytes((i * seed + i // 7) % 256 for i in range(200_000))
                """
            let body = """
                {"script_type": "python", "script_content": \(quote(main)), "wait": true,
                 "files": [{"path": "app/main.py", "content": \(quote(app))},
                           {"path": "app/__init__.py", "content": ""},
                           {"path": "app/helper.py", "content": \(quote(helper))},
                           {"path": "data/in.csv", "content": "name,value\\na,3\\nb,4\\n"}],
                 "outputs": ["result.json", "plots/*.png"]}
                """
            let done = try await s.post("/executions", body)
            #expect(done.status == 200 && done.object["status"] as? String == "SUCCESS", "\(done)")
            #expect(done.object["stdout"] as? String == "done\n", "\(done)")
            let id = try #require(done.object["id"] as? Int)

            var expectedPNG = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
            for i in 0..<200_000 {
                let byte: Int = (i * 3 + i / 7) % 256
                expectedPNG.append(UInt8(byte))
            }
            let expectedJSON = Data(#"{"rows": 3, "total": 7}"#.utf8)

            let listed = try await s.get("/executions/\(id)/files")
            #expect(listed.status == 200, "\(listed)")
            let files = listed.object["files"] as? [[String: Any]] ?? []
            #expect(files.map { $0["path"] as? String } == ["plots/chart.png", "result.json"], "\(listed)")
            #expect((listed.object["skipped"] as? [Any])?.isEmpty == true)
            let png = try await s.get("/executions/\(id)/files/plots/chart.png")
            #expect(png.status == 200 && png.contentType == "application/octet-stream")
            #expect(png.body == expectedPNG, "the PNG differs: \(png.body.count) bytes")
            #expect(png.headers["content-length"] == String(expectedPNG.count))
            let digest = try Self.sha256(expectedPNG)
            #expect(png.headers["etag"] == "\"\(digest)\"")
            #expect(files.first?["sha256"] as? String == digest && files.first?["size"] as? Int == expectedPNG.count)
            let json = try await s.get("/executions/\(id)/files/result.json")
            #expect(json.body == expectedJSON, "\(json)")
            // The ETag holds: If-None-Match answers 304.
            let again = try await s.call("GET", "/executions/\(id)/files/result.json", headers: ["If-None-Match": json.headers["etag"] ?? ""])
            #expect(again.status == 304)
        }
    }

    @Test("Collected whatever the verdict; symlinks never followed; too large and non-regular skipped with why; job and run patterns add up")
    func rules() async throws {
        try await LiveServer.with({ $0.engine.maxArtifactBytes = 1000 }) { s in
            let killed = try await s.post("/executions", #"{"script_type": "bash", "script_content": "echo partial > run.log; sleep 30", "limits": {"wall_time": "500ms"}, "outputs": ["*.log"], "wait": true}"#)
            #expect(killed.object["verdict"] as? String == "wall_timeout", "\(killed)")
            let killedID = try #require(killed.object["id"] as? Int)
            #expect(try await s.get("/executions/\(killedID)/files/run.log").text == "partial\n")

            let tricky = try await s.post("/executions", #"{"script_type": "bash", "script_content": "ln -s /etc/hostname link.txt; head -c 2000 /dev/zero > big.txt; mkfifo pipe.txt; echo ok > ok.txt", "outputs": ["*.txt"], "wait": true}"#)
            let trickyID = try #require(tricky.object["id"] as? Int)
            let listed = try await s.get("/executions/\(trickyID)/files")
            #expect((listed.object["files"] as? [[String: Any]])?.map { $0["path"] as? String } == ["ok.txt"], "\(listed)")
            let skipped = Dictionary(uniqueKeysWithValues: (listed.object["skipped"] as? [[String: Any]] ?? []).map {
                ($0["path"] as? String ?? "", $0["reason"] as? String ?? "")
            })
            #expect(skipped["link.txt"]?.contains("symbolic link") == true, "\(skipped)")
            #expect(skipped["big.txt"]?.contains("too large") == true && skipped["big.txt"]?.contains("max_artifact_bytes") == true, "\(skipped)")
            #expect(skipped["pipe.txt"]?.contains("not a regular file") == true, "\(skipped)")
            try await s.get("/executions/\(trickyID)/files/link.txt").expectProblem(404, field: "path", "ok.txt")

            let job = try await s.post("/jobs", #"{"name": "outs", "script_type": "bash", "script_content": "echo a > a.out; echo b > b.out", "outputs": ["a.out"]}"#)
            let jobID = try #require(job.object["id"] as? Int, "\(job)")
            #expect(job.object["outputs"] as? [String] == ["a.out"])
            let run = try await s.post("/executions/\(jobID)/run?wait=true", #"{"outputs": ["b.out"]}"#)
            let runID = try #require(run.object["id"] as? Int)
            let both = try await s.get("/executions/\(runID)/files")
            #expect((both.object["files"] as? [[String: Any]])?.map { $0["path"] as? String } == ["a.out", "b.out"], "\(both)")
        }
    }

    @Test("Another tenant's files are 404; bad patterns are 422 naming them; retention removes the files with their execution")
    func isolationAndRefusals() async throws {
        try await LiveServer.with { s in
            let (_, mine) = try await s.token("owner", role: "submitter")
            let (_, other) = try await s.token("other", role: "submitter")
            let done = try await s.call("POST", "/executions", json: #"{"script_type": "bash", "script_content": "echo secret > s.txt", "outputs": ["s.txt"], "wait": true}"#, as: .token(mine))
            let id = try #require(done.object["id"] as? Int, "\(done)")
            #expect(try await s.get("/executions/\(id)/files/s.txt", as: .token(mine)).text == "secret\n")
            try await s.get("/executions/\(id)/files", as: .token(other)).expectProblem(404, "not found")
            try await s.get("/executions/\(id)/files/s.txt", as: .token(other)).expectProblem(404, "not found")
            try await s.get("/executions/999999/files").expectProblem(404)

            for (pattern, fragment) in [("/etc/*", "absolute"), ("../x", "'..'"), ("a//b", "normalised"), ("", "empty")] {
                try await s.post("/executions", #"{"script_type": "bash", "script_content": "true", "outputs": ["ok", \#(quote(pattern))]}"#)
                    .expectProblem(422, field: "outputs[1]", fragment)
            }
            try await s.post("/executions", #"{"script_type": "bash", "script_content": "true", "outputs": "x"}"#).expectProblem(422, field: "outputs")

            #expect(try await s.store.prune(keepPerJob: nil, olderThan: Date().addingTimeInterval(60)) >= 1)
            try await s.get("/executions/\(id)/files", as: .token(mine)).expectProblem(404)
            #expect(try await s.store.artifact(executionID: Int64(id), path: "s.txt") == nil)
        }
    }
}
