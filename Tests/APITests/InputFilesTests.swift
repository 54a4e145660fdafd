import Foundation
import Testing

/// `files`: input files written into the execution's working directory before the program
/// starts, on ad-hoc runs, on jobs (PATCH replaces them) and on their runs (merged, the run's
/// file of a path winning); every mistake a 422 naming the file and the rule.
@Suite("Input files")
struct InputFilesTests {
    static func files(_ items: [(String, String)]) -> String {
        "[" + items.map { #"{"path": \#(quote($0.0)), "content": \#(quote($0.1))}"# }.joined(separator: ", ") + "]"
    }

    @Test("An ad-hoc run reads its files (text, base64 binary, in folders) from its working directory, runs an executable one and writes beside them")
    func adHocFiles() async throws {
        try await LiveServer.with { s in
            let binary = Data((0..<256).map { UInt8($0) })
            let body = #"""
                {"script_type": "bash", "wait": true,
                 "script_content": "pwd; cat data/in.csv; od -An -tx1 blob.bin | wc -w; ./tools/hello.sh; ls -l data/in.csv | cut -c1-10; echo new > out.txt && cat out.txt; echo x >> data/in.csv || echo read-only",
                 "files": [{"path": "data/in.csv", "content": "a,b\n1,2\n"},
                           {"path": "blob.bin", "content": "\#(binary.base64EncodedString())", "encoding": "base64"},
                           {"path": "tools/hello.sh", "content": "#!/bin/bash\necho hello from tool", "executable": true}]}
                """#
            let done = try await s.post("/executions", body)
            #expect(done.status == 200, "\(done)")
            #expect(done.object["status"] as? String == "SUCCESS", "\(done)")
            let lines = (done.object["stdout"] as? String ?? "").split(separator: "\n").map(String.init)
            #expect(lines.count >= 8, "\(done)")
            guard lines.count >= 8 else { return }
            #expect(lines[0] == "/tmp")
            #expect(Array(lines[1...2]) == ["a,b", "1,2"])
            #expect(lines[3] == "256")
            #expect(lines[4] == "hello from tool")
            #expect(lines[5] == "-r--r--r--")
            #expect(lines[6] == "new")
            #expect(lines[7] == "read-only")
        }
    }

    @Test("The most files a run takes all arrive; one more is refused naming the limit")
    func mostFiles() async throws {
        try await LiveServer.with { s in
            let most = 100
            // The last of them executable: its mode bit lies past the first 64.
            let files = String(Self.files((0..<most - 1).map { ("in/f\($0).txt", "\($0)\n") }).dropLast())
                + #", {"path": "run.sh", "content": "echo ran", "executable": true}]"#
            let done = try await s.post("/executions?wait=true", #"{"script_type": "bash", "script_content": "cat in/*.txt | wc -l; ./run.sh; stat -c %a in/f98.txt", "files": \#(files)}"#)
            #expect(done.object["stdout"] as? String == "\(most - 1)\nran\n444\n", "\(done)")
            let oneMore = Self.files((0...most).map { ("f\($0)", "x") })
            try await s.post("/executions", #"{"script_type": "bash", "script_content": "true", "files": \#(oneMore)}"#)
                .expectProblem(422, field: "files", "\(most + 1) files", "at most \(most)")
        }
    }

    @Test("Job files are stored and listed, a run's file of the same path wins, a PATCH replaces them all")
    func jobFiles() async throws {
        try await LiveServer.with { s in
            let created = try await s.post("/jobs", #"{"name": "with-files", "script_type": "bash", "script_content": "cat a.txt b.txt 2>&1", "concurrency": "allow", "files": \#(Self.files([("a.txt", "job-a\n"), ("b.txt", "job-b\n")]))}"#)
            #expect(created.status == 200, "\(created)")
            let id = try #require(created.object["id"] as? Int)
            let listed = created.object["files"] as? [[String: Any]]
            #expect(listed?.map { $0["path"] as? String } == ["a.txt", "b.txt"] && listed?.first?["size"] as? Int == 6
                    && listed?.first?["executable"] as? Bool == false, "\(created)")
            #expect(try await s.get("/jobs/\(id)").object["files"] as? [[String: Any]] != nil)

            let plain = try await s.post("/executions/\(id)/run?wait=true")
            #expect(plain.object["stdout"] as? String == "job-a\njob-b\n", "\(plain)")
            let merged = try await s.post("/executions/\(id)/run?wait=true", #"{"files": \#(Self.files([("b.txt", "run-b\n")]))}"#)
            #expect(merged.object["stdout"] as? String == "job-a\nrun-b\n", "\(merged)")

            let patched = try await s.call("PATCH", "/jobs/\(id)", json: #"{"files": \#(Self.files([("b.txt", "patched\n")]))}"#)
            #expect((patched.object["files"] as? [[String: Any]])?.map { $0["path"] as? String } == ["b.txt"], "\(patched)")
            let after = try await s.post("/executions/\(id)/run?wait=true")
            #expect((after.object["stdout"] as? String)?.contains("a.txt: No such file") == true, "\(after)")
            #expect((after.object["stdout"] as? String)?.hasSuffix("patched\n") == true, "\(after)")
            // A PATCH without files keeps them.
            _ = try await s.call("PATCH", "/jobs/\(id)", json: #"{"arguments": ["x"]}"#)
            #expect((try await s.get("/jobs/\(id)").object["files"] as? [Any])?.count == 1)
        }
    }

    @Test("Refusals name the file and the rule: absolute, '..', not normalised, twice, file and folder, encoding, count, max_files_bytes")
    func refusals() async throws {
        try await LiveServer.with({ $0.engine.maxFilesBytes = 1000 }) { s in
            func adHoc(_ files: String) async throws -> HTTPAnswer {
                try await s.post("/executions", #"{"script_type": "bash", "script_content": "true", "files": \#(files)}"#)
            }
            try await adHoc(Self.files([("/etc/passwd", "x")])).expectProblem(422, field: "files[0].path", "absolute")
            try await adHoc(Self.files([("ok", "x"), ("../up", "x")])).expectProblem(422, field: "files[1].path", "'..'")
            try await adHoc(Self.files([("a//b", "x")])).expectProblem(422, field: "files[0].path", "not normalised", "\"a/b\"")
            try await adHoc(Self.files([("./a", "x")])).expectProblem(422, field: "files[0].path", "not normalised")
            try await adHoc(Self.files([("a/", "x")])).expectProblem(422, field: "files[0].path", "not normalised")
            try await adHoc(Self.files([("", "x")])).expectProblem(422, field: "files[0].path", "empty")
            try await adHoc(Self.files([("a", "x"), ("a", "y")])).expectProblem(422, field: "files[1].path", "files[0]")
            try await adHoc(Self.files([("d", "x"), ("d/e", "y")])).expectProblem(422, field: "files[0].path", "folder")
            try await adHoc(#"[{"path": "a", "content": "%%%", "encoding": "base64"}]"#).expectProblem(422, field: "files[0].content", "base64")
            try await adHoc(#"[{"path": "a", "content": "x", "encoding": "latin1"}]"#).expectProblem(422, field: "files[0].encoding", "utf-8 or base64")
            try await adHoc(#"[{"path": "a", "content": "x", "mode": 7}]"#).expectProblem(422, field: "files[0].mode", "unknown field")
            try await adHoc(#"[{"path": "a"}]"#).expectProblem(422, field: "files[0].content", "required")
            try await adHoc(#"{"path": "a"}"#).expectProblem(422, field: "files", "array")
            let many = Self.files((0..<101).map { ("f\($0)", "x") })
            try await adHoc(many).expectProblem(422, field: "files", "101 files", "at most")
            let big = String(repeating: "x", count: 600)
            try await adHoc(Self.files([("one", big), ("two", big)])).expectProblem(422, field: "files[1].content", "two", "max_files_bytes")
            // The job's and the run's together count.
            let job = try await s.post("/jobs", #"{"name": "heavy", "script_type": "bash", "script_content": "true", "files": \#(Self.files([("one", big)]))}"#)
            let id = try #require(job.object["id"] as? Int, "\(job)")
            try await s.post("/executions/\(id)/run", #"{"files": \#(Self.files([("two", big)]))}"#).expectProblem(422, field: "files", "max_files_bytes")
            try await s.post("/jobs", #"{"name": "bad", "script_type": "bash", "script_content": "true", "files": \#(Self.files([("..", "x")]))}"#)
                .expectProblem(422, field: "files[0].path")
        }
    }
}
