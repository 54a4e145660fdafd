import ConfineTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Glibc
import Testing

/// The client verbs (`confine job …`, `confine exec …`) against a real `confine serve`: each
/// test starts its own server (free port, fresh database) and stops it with SIGTERM at the end.
@Suite("confine job / exec against confine serve")
struct ClientVerbTests {
    /// Whether the binary has the `serve` verb; the tests skip (saying why) when it does not.
    static let hasServe: Bool = {
        let o = try? run(["serve", "--help"])
        if o?.status != 0 {
            print("SKIP client verb tests: \(CLITests.binary) has no `serve` verb (status \(o.map { String($0.status) } ?? "?"))")
            return false
        }
        return true
    }()

    // MARK: Running the binary

    /// What a finished `confine` process left: status and the raw bytes of its streams.
    struct Outcome: CustomStringConvertible {
        var status: Int32
        var out: Data
        var err: Data
        var stdout: String { String(decoding: out, as: UTF8.self) }
        var stderr: String { String(decoding: err, as: UTF8.self) }
        var description: String { "status \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
    }

    /// A started `confine` process whose streams are read to the end on their own threads.
    final class Running: @unchecked Sendable {
        let process = Process()
        private var out = Data(), err = Data()
        private let readers: [Thread]

        init(_ args: [String], environment extra: [String: String] = [:]) throws {
            process.executableURL = URL(fileURLWithPath: CLITests.binary)
            process.arguments = args
            process.currentDirectoryURL = URL(fileURLWithPath: CLITests.repoRoot)
            var environment = ProcessInfo.processInfo.environment
            environment.removeValue(forKey: "CONFINE_SERVER")
            environment.removeValue(forKey: "CONFINE_TOKEN")
            // Never the developer's own ~/.config/confine/config.yaml.
            environment["XDG_CONFIG_HOME"] = FileManager.default.temporaryDirectory.appendingPathComponent("confine-no-config").path
            environment.merge(extra) { _, new in new }
            process.environment = environment
            let outPipe = Pipe(), errPipe = Pipe()
            process.standardOutput = outPipe
            process.standardError = errPipe
            process.standardInput = FileHandle.nullDevice
            var readers: [Thread] = []
            try ProcessLaunch.run(process)
            // Filled in by the threads, read after they finish.
            nonisolated(unsafe) var outData = Data(), errData = Data()
            readers.append(Thread { outData = outPipe.fileHandleForReading.readDataToEndOfFile() })
            readers.append(Thread { errData = errPipe.fileHandleForReading.readDataToEndOfFile() })
            self.readers = readers
            readers.forEach { $0.start() }
            collect = { (outData, errData) }
        }

        private var collect: () -> (Data, Data) = { (Data(), Data()) }

        func finish() -> Outcome {
            process.waitUntilExit()
            while readers.contains(where: { !$0.isFinished }) { usleep(1000) }
            (out, err) = collect()
            return Outcome(status: process.terminationStatus, out: out, err: err)
        }
    }

    static func run(_ args: [String], environment: [String: String] = [:]) throws -> Outcome {
        try Running(args, environment: environment).finish()
    }

    struct ServerError: Error, CustomStringConvertible { var description: String }

    // MARK: The server

    /// A `confine serve` on a free loopback port with a database in a temporary folder (the
    /// shared harness, `ConfineServerProcess`), and the client verbs run against it.
    final class Server {
        let process: ConfineServerProcess
        var url: String { process.url }
        var dir: URL { process.folder }
        /// The admin token the server made on its first start (read from admin.token).
        var adminToken: String { process.adminToken }
        /// The server's process id (for signals).
        var pid: Int32 { process.pid }

        init(policies: String = CLITests.repoRoot + "/policies", extraConfig: String = "") async throws {
            process = try await ConfineServerProcess(binary: CLITests.binary, policies: policies, extraConfig: extraConfig,
                                                     label: "confine-client")
        }

        /// Stops the server gracefully (SIGTERM: running executions get its grace) and starts it
        /// again on the same port and database.
        func restart() async throws { try await process.restart() }

        /// SIGTERM, then waits for the exit; removes the folder.
        func stop() { process.stop() }

        static func healthy(_ url: String) async -> Bool { await ConfineServerProcess.healthy(url) }

        /// A loopback port nothing listens on right now (bound to port 0, then released).
        static func freePort() throws -> Int { try ConfineServerProcess.freePort() }

        /// `confine ARGS --server URL`, with the admin token in CONFINE_TOKEN (or `token`).
        func confine(_ args: [String], token: String? = nil) throws -> Outcome {
            try ClientVerbTests.run(args + ["--server", url], environment: ["CONFINE_TOKEN": token ?? adminToken])
        }

        /// One HTTP request with the admin token (or `token`); the JSON answer and the status.
        func request(_ method: String, _ path: String, _ body: String? = nil, token: String? = nil) async throws
            -> (status: Int, json: Any?) {
            var request = URLRequest(url: URL(string: url + path)!)
            request.httpMethod = method
            request.httpBody = body.map { Data($0.utf8) }
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.setValue("Bearer \(token ?? adminToken)", forHTTPHeaderField: "Authorization")
            let (data, response) = try await URLSession.shared.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, try? JSONSerialization.jsonObject(with: data))
        }

        /// Writes a file in the server's folder and returns its path.
        func file(_ name: String, _ contents: String) throws -> String {
            let path = dir.appendingPathComponent(name).path
            try contents.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        /// The execution as JSON, via `exec show --json`.
        func execution(_ id: Int) throws -> [String: Any] {
            let o = try confine(["exec", "show", String(id), "--json"])
            #expect(o.status == 0, "\(o)")
            return try CLITests.json(o.stdout)
        }

        /// Polls the execution until `done` holds for it (at most `seconds`).
        func waitFor(_ id: Int, seconds: Double = 20, until done: ([String: Any]) -> Bool) throws -> [String: Any] {
            let deadline = Date().addingTimeInterval(seconds)
            var last = try execution(id)
            while !done(last), Date() < deadline {
                usleep(100_000)
                last = try execution(id)
            }
            return last
        }
    }

    /// The id in `execution 7 PENDING`.
    static func executionID(_ o: Outcome) throws -> Int {
        let words = o.stdout.split(separator: " ")
        #expect(words.count == 3 && words[0] == "execution", "\(o)")
        return try #require(words.count > 1 ? Int(words[1]) : nil, "\(o)")
    }

    // MARK: Tests

    @Test("job create from a file, list, show by name, update, --json, delete", .enabled(if: hasServe))
    func jobs() async throws {
        let server = try await Server()
        defer { server.stop() }
        let script = try server.file("hello.py", "import sys\nprint('hi', sys.argv[1:])\n")
        let created = try server.confine(["job", "create", "hello-world", "--type", "python", "--file", script,
                                          "--limit", "wall_time=5s", "--arg", "one", "--concurrency", "queue"])
        #expect(created.status == 0, "\(created)")
        #expect(created.stdout == "job 1 hello-world created\n")

        let list = try server.confine(["job", "list"])
        #expect(list.status == 0, "\(list)")
        let lines = list.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(lines.first == ["ID", "NAME", "TYPE", "POLICY", "CONCURRENCY", "UPDATED"], "\(list)")
        #expect(lines.count == 2 && Array(lines[1].prefix(5)) == ["1", "hello-world", "python", "default", "queue"], "\(list)")
        let filtered = try server.confine(["job", "list", "--type", "bash"])
        #expect(filtered.stdout.split(separator: "\n").count == 1, "\(filtered)")

        let show = try server.confine(["job", "show", "hello-world"])
        #expect(show.status == 0, "\(show)")
        #expect(show.stdout.contains("name:        hello-world\n"), "\(show)")
        #expect(show.stdout.contains("limits:      wall_time=5s\n"), "\(show)")
        #expect(show.stdout.contains("arguments:   one\n"), "\(show)")
        #expect(show.stdout.hasSuffix("import sys\nprint('hi', sys.argv[1:])\n"), "\(show)")

        let json = try server.confine(["job", "show", "1", "--json"])
        let job = try CLITests.json(json.stdout)
        #expect(job["name"] as? String == "hello-world")
        #expect(job["script_content"] as? String == "import sys\nprint('hi', sys.argv[1:])\n")
        let listJSON = try server.confine(["job", "list", "--json"])
        #expect((try JSONSerialization.jsonObject(with: listJSON.out) as? [Any])?.count == 1, "\(listJSON)")

        let updated = try server.confine(["job", "update", "hello-world", "--name", "hello", "--concurrency", "allow"])
        #expect(updated.status == 0, "\(updated)")
        #expect(updated.stdout == "job 1 hello updated\n")
        #expect(try server.confine(["job", "show", "hello"]).stdout.contains("concurrency: allow\n"))

        let duplicate = try server.confine(["job", "create", "hello", "--type", "python", "--script", "pass"])
        #expect(duplicate.status == 1, "\(duplicate)")
        #expect(duplicate.stderr.hasPrefix("confine: "), "\(duplicate)")

        let invalid = try server.confine(["job", "create", "x", "--type", "cobol", "--script", "pass"])
        #expect(invalid.status == 1, "\(invalid)")
        #expect(invalid.stderr.contains("(field: script_type)"), "\(invalid)")

        let deleted = try server.confine(["job", "delete", "hello"])
        #expect(deleted.status == 0, "\(deleted)")
        #expect(deleted.stdout == "job 1 hello deleted\n")
        let gone = try server.confine(["job", "show", "hello"])
        #expect(gone.status == 1, "\(gone)")
        #expect(gone.stderr.hasPrefix("confine: ") && gone.stderr.contains("hello"), "\(gone)")
    }

    @Test("exec run --wait: the script's exit status and its exact output bytes; exec output --stream", .enabled(if: hasServe))
    func runWait() async throws {
        let server = try await Server()
        defer { server.stop() }
        let script = try server.file("s.sh", "read line\nprintf 'out %s\\n' \"$line\"\nprintf 'caf\\xc3\\xa9 %s\\n' \"$1\"\nprintf 'err\\xff\\n' >&2\nexit 3\n")
        #expect(try server.confine(["job", "create", "three", "--type", "bash", "--file", script]).status == 0)
        let stdin = try server.file("in.txt", "from stdin\n")
        let o = try server.confine(["exec", "run", "three", "--wait", "--stdin", stdin, "--arg", "arg1"])
        #expect(o.status == 3, "\(o)")
        #expect(o.out == Data("out from stdin\ncafé arg1\n".utf8), "\(o)")
        // stderr: the execution's id, the script's own stderr bytes, then confine run's summary line.
        let errLines = o.err.split(separator: 0x0A, omittingEmptySubsequences: false)
        let submitted = String(decoding: errLines.first ?? Data(), as: UTF8.self)
        #expect(submitted.hasPrefix("confine: execution ") && submitted.hasSuffix(" submitted (job three)"), "\(o)")
        #expect(errLines.count == 4 && Data(errLines[1]) == Data([0x65, 0x72, 0x72, 0xFF]), "\(o)")
        let summary = String(decoding: errLines.count > 2 ? Data(errLines[2]) : Data(), as: UTF8.self)
        #expect(summary.hasPrefix("confine: exited 3 — wall ") && summary.contains(" ms, cpu ") && summary.contains("peak memory"), "\(o)")

        let list = try server.confine(["exec", "list", "--json"])
        let page = try CLITests.json(list.stdout)
        let first = try #require((page["executions"] as? [[String: Any]])?.first, "\(list)")
        let id = try #require(first["id"] as? Int)
        #expect(first["exit_code"] as? Int == 3)
        let stderr = try server.confine(["exec", "output", String(id), "--stream", "stderr"])
        #expect(stderr.status == 0, "\(stderr)")
        #expect(stderr.out == Data([0x65, 0x72, 0x72, 0xFF, 0x0A]))
        #expect(try server.confine(["exec", "output", String(id)]).out == Data("out from stdin\ncafé arg1\n".utf8))

        // A verdict other than `exited` maps to confine run's codes.
        #expect(try server.confine(["job", "create", "slow", "--type", "bash", "--script", "sleep 10"]).status == 0)
        let timedOut = try server.confine(["exec", "run", "slow", "--wait", "--limit", "wall_time=300ms"])
        #expect(timedOut.status == 124, "\(timedOut)")
        #expect(timedOut.stderr.contains("wall_timeout"), "\(timedOut)")

        // --json with --wait prints the final execution and still exits like it.
        let json = try server.confine(["exec", "run", "three", "--wait", "--json"])
        #expect(json.status == 3, "\(json)")
        #expect(try CLITests.json(json.stdout)["status"] as? String == "FAILED")
    }

    @Test("exec run --script FILE --type python: an ad-hoc run (no job), waited for, exits like it; refusals", .enabled(if: hasServe))
    func runScript() async throws {
        let server = try await Server()
        defer { server.stop() }
        let script = try server.file("adhoc.py", "import sys\nprint('hello', sys.stdin.read().strip(), sys.argv[1:])\nsys.exit(5)\n")
        let stdin = try server.file("adhoc-in.txt", "world\n")
        let o = try server.confine(["exec", "run", "--script", script, "--type", "python", "--wait", "--stdin", stdin, "--arg", "a1"])
        #expect(o.status == 5, "\(o)")
        #expect(o.stdout == "hello world ['a1']\n", "\(o)")
        #expect(try server.confine(["job", "list", "--json"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]")
        let queued = try server.confine(["exec", "run", "--script", script, "--type", "python"])
        #expect(queued.status == 0, "\(queued)")
        let id = try Self.executionID(queued)
        let show = try server.confine(["exec", "show", String(id), "--json"])
        #expect(try CLITests.json(show.stdout)["job_id"] is NSNull, "\(show)")
        #expect(try server.confine(["exec", "run", "--script", script]).status == 64)
        #expect(try server.confine(["exec", "run", "some-job", "--script", script, "--type", "python"]).status == 64)
        let unknown = try server.confine(["exec", "run", "--script", script, "--type", "cobol", "--wait"])
        #expect(unknown.status == 1 && unknown.stderr.contains("cobol"), "\(unknown)")

        // Input files: --file LOCAL[:PATH] on a run, --input on a job (merged, the run's winning).
        let data = try server.file("data.csv", "x,y\n")
        let reader = try server.file("reader.py", "print(open('in/data.csv').read(), end='')\nprint(open('extra.txt').read(), end='')\n")
        let extra = try server.file("extra.txt", "from the job\n")
        let withFiles = try server.confine(["exec", "run", "--script", reader, "--type", "python", "--wait",
                                            "--file", "\(data):in/data.csv", "--file", extra])
        #expect(withFiles.status == 0 && withFiles.stdout == "x,y\nfrom the job\n", "\(withFiles)")
        #expect(try server.confine(["job", "create", "reads", "--type", "python", "--file", reader, "--input", "\(data):in/data.csv",
                                    "--input", extra]).status == 0)
        // job create --file: the script (the first without :PATH), then input files LOCAL[:PATH].
        let created = try server.confine(["job", "create", "reads2", "--type", "python", "--file", reader, "--file", "\(data):in/data.csv",
                                          "--file", "\(extra):extra.txt"])
        #expect(created.status == 0, "\(created)")
        let viaFile = try server.confine(["exec", "run", "reads2", "--wait"])
        #expect(viaFile.status == 0 && viaFile.stdout == "x,y\nfrom the job\n", "\(viaFile)")
        // job update --file LOCAL:PATH replaces the input files, not the script.
        let extra2 = try server.file("extra2.txt", "updated\n")
        #expect(try server.confine(["job", "update", "reads2", "--file", "\(data):in/data.csv", "--file", "\(extra2):extra.txt"]).status == 0)
        let updated = try server.confine(["exec", "run", "reads2", "--wait"])
        #expect(updated.status == 0 && updated.stdout == "x,y\nupdated\n", "\(updated)")
        let runOverride = try server.file("other.txt", "from the run\n")
        let jobRun = try server.confine(["exec", "run", "reads", "--wait", "--file", "\(runOverride):extra.txt"])
        #expect(jobRun.status == 0 && jobRun.stdout == "x,y\nfrom the run\n", "\(jobRun)")

        // Output files: --output on the run, then exec files (list, --get to stdout and to a file).
        let writer = try server.file("writer.sh", "mkdir -p out; printf 'r\\x00s' > out/result.bin; echo log > run.log\n")
        let wrote = try server.confine(["exec", "run", "--script", writer, "--type", "bash", "--wait", "--json", "--output", "out/*", "--output", "*.log"])
        #expect(wrote.status == 0, "\(wrote)")
        let wroteID = try #require(try CLITests.json(wrote.stdout)["id"] as? Int, "\(wrote)")
        let listing = try server.confine(["exec", "files", String(wroteID)])
        #expect(listing.status == 0 && listing.stdout.contains("\tout/result.bin\n") && listing.stdout.contains("\trun.log\n"), "\(listing)")
        let got = try server.confine(["exec", "files", String(wroteID), "--get", "out/result.bin"])
        #expect(got.out == Data([0x72, 0x00, 0x73]), "\(got)")
        let local = server.dir.appendingPathComponent("downloaded.log").path
        #expect(try server.confine(["exec", "files", String(wroteID), "--get", "run.log", "-o", local]).status == 0)
        #expect(FileManager.default.contents(atPath: local) == Data("log\n".utf8))
        let missing = try server.confine(["exec", "files", String(wroteID), "--get", "nope"])
        #expect(missing.status == 1 && missing.stderr.contains("nope"), "\(missing)")
    }

    @Test("exec run without --wait, then exec show and exec list (table and --json)", .enabled(if: hasServe))
    func runNoWait() async throws {
        let server = try await Server()
        defer { server.stop() }
        #expect(try server.confine(["job", "create", "greet", "--type", "bash", "--script", "echo hello"]).status == 0)
        let o = try server.confine(["exec", "run", "greet"])
        #expect(o.status == 0, "\(o)")
        #expect(o.stdout.range(of: #"^execution \d+ (PENDING|RUNNING)\n$"#, options: .regularExpression) != nil, "\(o)")
        let id = try Self.executionID(o)
        let final = try server.waitFor(id) { ($0["status"] as? String).map { !["PENDING", "RUNNING"].contains($0) } ?? false }
        #expect(final["status"] as? String == "SUCCESS", "\(final)")

        let show = try server.confine(["exec", "show", String(id)])
        #expect(show.status == 0, "\(show)")
        #expect(show.stdout.hasPrefix("id:"), "\(show)")
        #expect(show.stdout.contains("status:") && show.stdout.contains("SUCCESS"), "\(show)")
        #expect(show.stdout.contains("--- stdout (6 bytes) ---\nhello\n"), "\(show)")

        let list = try server.confine(["exec", "list", "--job", "greet", "--status", "SUCCESS"])
        #expect(list.status == 0, "\(list)")
        let rows = list.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(rows.first == ["ID", "JOB", "STATUS", "VERDICT", "EXIT", "WALL", "CREATED"], "\(list)")
        #expect(rows.count == 2 && Array(rows[1].prefix(5)) == [String(id), "greet", "SUCCESS", "exited", "0"], "\(list)")
        let none = try server.confine(["exec", "list", "--status", "FAILED", "--json"])
        #expect((try CLITests.json(none.stdout)["executions"] as? [Any])?.isEmpty == true, "\(none)")
    }

    @Test("exec cancel of a running `sleep 30` → CANCELLED; Ctrl-C of exec run --wait cancels and exits 120", .enabled(if: hasServe))
    func cancel() async throws {
        let server = try await Server()
        defer { server.stop() }
        #expect(try server.confine(["job", "create", "sleeper", "--type", "bash", "--script", "sleep 30", "--concurrency", "allow"]).status == 0)
        let id = try Self.executionID(try server.confine(["exec", "run", "sleeper"]))
        _ = try server.waitFor(id) { $0["status"] as? String == "RUNNING" }
        let cancelled = try server.confine(["exec", "cancel", String(id)])
        #expect(cancelled.status == 0, "\(cancelled)")
        // CANCELLED at once, or "cancel requested" when the machine is too loaded to end it
        // within the server's short wait; either way it ends CANCELLED.
        #expect(["execution \(id) CANCELLED\n", "execution \(id) RUNNING cancel requested\n"].contains(cancelled.stdout), "\(cancelled)")
        #expect(try server.waitFor(id) { $0["status"] as? String != "RUNNING" }["status"] as? String == "CANCELLED")
        let again = try server.confine(["exec", "cancel", String(id)])
        #expect(again.status == 1 && again.stderr == "confine: execution \(id) is already CANCELLED\n", "\(again)")

        let waiting = try Running(["exec", "run", "sleeper", "--wait", "--server", server.url], environment: ["CONFINE_TOKEN": server.adminToken])
        usleep(1_500_000)
        waiting.process.interrupt()
        let o = waiting.finish()
        #expect(o.status == 120, "\(o)")
        let latest = try CLITests.json(try server.confine(["exec", "list", "--limit", "1", "--json"]).stdout)
        let newest = try #require((latest["executions"] as? [[String: Any]])?.first?["id"] as? Int)
        #expect(newest != id)
        let execution = try server.waitFor(newest) { !["PENDING", "RUNNING"].contains($0["status"] as? String ?? "") }
        #expect(execution["status"] as? String == "CANCELLED", "\(execution)")
    }

    @Test("exec run --follow and exec output -f print each stream as it comes, byte-exact, then exit like the execution",
          .enabled(if: hasServe))
    func follow() async throws {
        let server = try await Server()
        defer { server.stop() }
        let script = try server.file("talk.sh", "for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.2; done\nprintf 'caf\\xc3\\xa9 \\xff\\n'\nexit 3\n")
        #expect(try server.confine(["job", "create", "talk", "--type", "bash", "--file", script]).status == 0)
        let o = try server.confine(["exec", "run", "talk", "--follow"])
        let talked = try #require((try CLITests.json(try server.confine(["exec", "list", "--job", "talk", "--json"]).stdout)["executions"]
            as? [[String: Any]])?.first?["id"] as? Int)
        if try Self.exitStatus(server.execution(talked)) == 124 {
            // A loaded machine starved the script past its wall time: what was kept, and 124.
            let kept = try server.confine(["exec", "output", String(talked)]).out
            #expect(o.status == 124 && o.out == kept, "\(o)")
        } else {
            #expect(o.status == 3, "\(o)")
            #expect(o.out == Data("out 1\nout 2\nout 3\ncaf\u{e9} ".utf8) + Data([0xFF, 0x0A]), "\(o)")
            // The id first, the script's stderr, then confine run's summary line.
            let prefix = "confine: execution \(talked) submitted (job talk)\nerr 1\nerr 2\nerr 3\nconfine: exited 3 — wall "
            #expect(o.stderr.hasPrefix(prefix) && o.stderr.hasSuffix("\n") && o.stderr.split(separator: "\n").count == 5, "\(o)")
        }

        // A running execution followed from elsewhere: both streams, or one.
        let counter = "for i in $(seq 1 20); do echo line $i; echo e$i >&2; sleep 0.05; done; exit 4"
        #expect(try server.confine(["job", "create", "counter", "--type", "bash", "--script", counter]).status == 0)
        let id = try Self.executionID(try server.confine(["exec", "run", "counter"]))
        _ = try server.waitFor(id) { $0["status"] as? String != "PENDING" }
        let both = try Running(["exec", "output", String(id), "-f", "--server", server.url], environment: ["CONFINE_TOKEN": server.adminToken])
        let one = try Running(["exec", "output", String(id), "--stream", "stderr", "--follow", "--server", server.url], environment: ["CONFINE_TOKEN": server.adminToken])
        let lines = (1...20).map { "line \($0)\n" }.joined(), errors = (1...20).map { "e\($0)\n" }.joined()
        let b = both.finish(), e = one.finish()
        // What the server kept, and the exit status of the execution (4, or 124 should a loaded
        // machine starve the script past its wall time): the followers print and exit the same.
        let kept = (try server.confine(["exec", "output", String(id)]).out, try server.confine(["exec", "output", String(id), "--stream", "stderr"]).out)
        let execution = try server.execution(id)
        let status = try Self.exitStatus(execution)
        #expect(status == 4 || (status == 124 && lines.utf8.starts(with: kept.0)), "\(execution)")
        #expect(b.status == status && b.out == kept.0 && b.err.starts(with: kept.1), "\(b)")
        #expect(e.status == status && e.out.isEmpty && e.err.starts(with: kept.1), "\(e)")
        if status == 4 {
            #expect(b.stdout == lines && e.stderr.hasPrefix(errors + "confine: exited 4 — wall "), "\(b)\n\(e)")
        }
        // Once finished, -f replays and exits at once, like the execution.
        let replay = try server.confine(["exec", "output", String(id), "-f"])
        #expect(replay.status == status && replay.out == kept.0 && replay.err.starts(with: kept.1), "\(replay)")

        // Ctrl-C while following cancels the execution, as with --wait.
        #expect(try server.confine(["job", "create", "sleepy", "--type", "bash", "--script", "echo up; sleep 30"]).status == 0)
        let sleepy = try Running(["exec", "run", "sleepy", "--follow", "--server", server.url], environment: ["CONFINE_TOKEN": server.adminToken])
        var sleepyID: Int?
        for _ in 0..<100 where sleepyID == nil {
            let latest = try CLITests.json(try server.confine(["exec", "list", "--job", "sleepy", "--json"]).stdout)
            sleepyID = (latest["executions"] as? [[String: Any]])?.first?["id"] as? Int
            if sleepyID == nil { usleep(100_000) }
        }
        _ = try server.waitFor(try #require(sleepyID)) { ($0["stdout_bytes"] as? Int ?? 0) > 0 }
        usleep(500_000)  // the follower has the line by now (it streams within milliseconds)
        sleepy.process.interrupt()
        let interrupted = sleepy.finish()
        #expect(interrupted.status == 120 && interrupted.stdout == "up\n", "\(interrupted)")
        #expect(interrupted.stderr.contains("CANCELLED") || interrupted.stderr.contains("cancel requested"), "\(interrupted)")

        let unknown = try server.confine(["exec", "output", "4242", "-f"])
        #expect(unknown.status == 1 && unknown.stderr.contains("4242"), "\(unknown)")
        #expect(try server.confine(["exec", "output", String(id), "-f", "--json"]).status == 64)
        #expect(try server.confine(["exec", "run", "talk", "--follow", "--json"]).status == 64)
    }

    @Test("exec output -f across a server restart: it reconnects with Last-Event-ID, every byte once", .enabled(if: hasServe))
    func followAcrossRestart() async throws {
        let server = try await Server(extraConfig: "shutdown_grace: 30s")
        defer { server.stop() }
        let script = "for i in $(seq 1 40); do echo line $i; sleep 0.05; done"
        #expect(try server.confine(["job", "create", "lines", "--type", "bash", "--script", script]).status == 0)
        let id = try Self.executionID(try server.confine(["exec", "run", "lines"]))
        _ = try server.waitFor(id) { ($0["stdout_bytes"] as? Int ?? 0) > 0 }
        let following = try Running(["exec", "output", String(id), "-f", "--server", server.url], environment: ["CONFINE_TOKEN": server.adminToken])
        usleep(300_000)
        // Graceful: the followed stream is closed, the execution finishes within the grace.
        try await server.restart()
        let o = following.finish()
        // Every byte the server kept, once, and its exit status (0, or 124 should a loaded
        // machine starve the script past its wall time).
        let status = try Self.exitStatus(server.execution(id))
        let kept = try server.confine(["exec", "output", String(id)]).out
        #expect(o.status == status && (status == 0 || status == 124), "\(o)")
        #expect(o.out == kept, "\(o)")
        if status == 0 { #expect(o.stdout == (1...40).map { "line \($0)\n" }.joined(), "\(o)") }
    }

    /// The exit status `exec run --wait` gives for an execution (as JSON): its exit code, 124
    /// for a wall timeout, 120 when cancelled; nil otherwise.
    static func exitStatus(_ e: [String: Any]) throws -> Int32 {
        switch e["verdict"] as? String {
        case "exited": return Int32(try #require(e["exit_code"] as? Int))
        case "wall_timeout": return 124
        case "cancelled": return 120
        default: throw ServerError(description: "unexpected end: \(e)")
        }
    }

    @Test("an unknown job or execution: exit 1 with the server's detail; usage errors exit 64", .enabled(if: hasServe))
    func refusals() async throws {
        let server = try await Server()
        defer { server.stop() }
        let job = try server.confine(["exec", "run", "no-such-job", "--wait"])
        #expect(job.status == 1, "\(job)")
        #expect(job.stderr.hasPrefix("confine: ") && job.stderr.contains("no-such-job"), "\(job)")
        #expect(job.stderr.split(separator: "\n").count == 1, "\(job)")
        let execution = try server.confine(["exec", "show", "4242"])
        #expect(execution.status == 1, "\(execution)")
        #expect(execution.stderr.contains("4242"), "\(execution)")
        #expect(try server.confine(["exec", "show", "seven"]).status == 64)
        #expect(try server.confine(["job", "create", "x", "--type", "bash"]).status == 64)
        #expect(try server.confine(["job", "create", "x", "--type", "bash", "--script", "true", "--limit", "memory"]).status == 64)
        #expect(try server.confine(["job", "create", "x", "--type", "bash", "--script", "true", "--concurrency", "sometimes"]).status == 64)
    }

    @Test("an unreachable server: exit 69 naming the URL and the reason")
    func unreachable() throws {
        let port = try Server.freePort()
        let o = try Self.run(["job", "list", "--server", "http://127.0.0.1:\(port)"])
        #expect(o.status == 69, "\(o)")
        #expect(o.stderr == "confine: cannot reach http://127.0.0.1:\(port): connection refused; is `confine serve` running?\n", "\(o)")
        let run = try Self.run(["exec", "run", "x", "--wait", "--server", "127.0.0.1:\(port)"])
        #expect(run.status == 69, "\(run)")
    }

    @Test("Secure by default: the first start writes an admin token 0600 and logs only its path; token create/list/revoke through the server and on the database; the client's token sources", .enabled(if: hasServe))
    func tokens() async throws {
        let server = try await Server()
        defer { server.stop() }
        let file = server.dir.appendingPathComponent("admin.token").path
        let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(server.adminToken.hasPrefix("cfn_") && server.adminToken.count == 47)
        let log = try String(contentsOf: server.dir.appendingPathComponent("server.log"), encoding: .utf8)
        #expect(log.contains(file) && !log.contains(server.adminToken), "\(log)")

        // Without a token: refused, saying how to give one.
        let anonymous = try ClientVerbTests.run(["job", "list", "--server", server.url])
        #expect(anonymous.status == 1 && anonymous.stderr.contains("CONFINE_TOKEN") && anonymous.stderr.contains("admin.token"), "\(anonymous)")

        // Through the server: the text alone on stdout, once.
        let made = try server.confine(["token", "create", "ci", "--role", "submitter", "--tenant", "build", "--max-active", "2"])
        #expect(made.status == 0, "\(made)")
        let ci = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(ci.hasPrefix("cfn_") && !made.stderr.contains(ci))
        let whoami = try await server.request("GET", "/whoami", token: ci)
        #expect(whoami.status == 200 && (whoami.json as? [String: Any])?["tenant"] as? String == "build")
        let list = try server.confine(["token", "list"])
        #expect(list.status == 0 && list.stdout.contains("ci") && list.stdout.contains("max_active=2") && !list.stdout.contains(ci), "\(list)")
        // The submitter cannot make tokens.
        let weak = try server.confine(["token", "create", "x", "--role", "admin"], token: ci)
        #expect(weak.status == 1 && weak.stderr.contains("admin"), "\(weak)")

        // On the database, while the server runs: a recovery admin token works at once; a revocation holds at once.
        let database = server.dir.appendingPathComponent("confine.sqlite").path
        let badExpiry = try ClientVerbTests.run(["token", "create", "x", "--role", "admin", "--expires", "soon", "--database", database])
        #expect(badExpiry.status == 64 && badExpiry.stderr.contains("--expires soon"), "\(badExpiry)")
        let direct = try ClientVerbTests.run(["token", "create", "rescue", "--role", "admin", "--expires", "90d", "--database", database])
        #expect(direct.status == 0, "\(direct)")
        let rescue = direct.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await server.request("GET", "/tokens", token: rescue).status == 200)
        let ciID = try #require(((try await server.request("GET", "/whoami", token: ci)).json as? [String: Any])?["id"] as? Int)
        let revoked = try ClientVerbTests.run(["token", "revoke", String(ciID), "--database", database])
        #expect(revoked.status == 0, "\(revoked)")
        #expect(try await server.request("GET", "/whoami", token: ci).status == 401)
        let offline = try ClientVerbTests.run(["token", "list", "--database", database])
        #expect(offline.stdout.contains("revoked") && offline.stdout.contains("rescue"), "\(offline)")
        let rescueRow = try #require(offline.stdout.split(separator: "\n").first { $0.contains("rescue") })
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        let expiry = day.string(from: Date().addingTimeInterval(90 * 86_400))
        #expect(rescueRow.contains(expiry), "90d from now, \(expiry): \(rescueRow)")

        // The client's config file: used when it is the owner's alone, refused otherwise.
        let home = server.dir.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: home.appendingPathComponent("confine"), withIntermediateDirectories: true)
        let config = home.appendingPathComponent("confine/config.yaml").path
        try "server: \(server.url)\ntoken: \(rescue)\n".write(toFile: config, atomically: true, encoding: .utf8)
        chmod(config, 0o644)
        let open = try ClientVerbTests.run(["job", "list"], environment: ["XDG_CONFIG_HOME": home.path])
        #expect(open.status == 78 && open.stderr.contains("chmod 600") && !open.stderr.contains("USAGE"), "\(open)")
        #expect(open.stderr.split(separator: "\n").count == 1, "one line, no usage block: \(open)")
        chmod(config, 0o600)
        let fromFile = try ClientVerbTests.run(["job", "list"], environment: ["XDG_CONFIG_HOME": home.path])
        #expect(fromFile.status == 0, "\(fromFile)")
    }
}
