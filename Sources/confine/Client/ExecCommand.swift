import ArgumentParser
import Dispatch
import Domain
import Foundation
import Synchronization
import Wire

/// `confine exec …`: run jobs on a Confine server and follow their executions.
struct ExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run jobs on a Confine server; list, show and cancel executions; print their output.",
        discussion: """
            Exit status: 0 done; 1 the server refused (the reason is printed); 64 bad usage; \
            66 an input file cannot be read; 69 the server cannot be reached or failed. \
            `exec run --wait` exits like the execution (see `confine exec run --help`).
            """,
        subcommands: [Run.self, List.self, Show.self, Cancel.self, Output.self]
    )

    /// `confine exec run JOB [--wait] [--timeout SECONDS] [--stdin FILE] [--arg A]… [--env N=V]… [--limit N=V]…`
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a job.",
            discussion: """
                Without --wait, prints the new execution's id and status and returns at once. With \
                --wait, follows the execution to its end, prints its stdout and stderr (raw bytes, \
                to this process's stdout and stderr) and exits like it: its exit code; 128+N when it \
                died of signal N; \(RunExitCode.wallTimeout.rawValue) wall_timeout, \(RunExitCode.cpuTimeout.rawValue) cpu_timeout, \
                \(RunExitCode.memoryLimit.rawValue) memory_limit, \(RunExitCode.outputLimit.rawValue) output_limit, \
                \(RunExitCode.cancelled.rawValue) cancelled, \(RunExitCode.setupFailed.rawValue) setup_failed or interrupted; \
                \(ExecCommand.stillRunningExitCode) when --timeout passed first (the execution goes on). \
                Ctrl-C while waiting cancels the execution. With --follow, the output is printed as it is \
                produced (like `tail -f`; a dropped connection is resumed where it was), then it exits the same way.
                """
        )

        @OptionGroup var options: ClientOptions

        @Argument(help: "The job: its id or its name.")
        var job: String

        @Flag(help: "Wait for the end of the execution and exit like it.")
        var wait = false

        @Flag(name: [.customShort("f"), .long], help: "Print the output as it is produced (implies --wait).")
        var follow = false

        @Option(help: ArgumentHelp("Wait at most this long (implies --wait); the execution is not cancelled.", valueName: "SECONDS"))
        var timeout: Double?

        @Option(help: ArgumentHelp("A file whose bytes are the script's stdin ('-': this process's stdin).", valueName: "FILE"))
        var stdin: String?

        @Option(name: .customLong("arg"), help: ArgumentHelp("An argument of the script, replacing the job's (repeat for several).", valueName: "A"))
        var arguments: [String] = []

        @Option(name: .customLong("env"), help: ArgumentHelp("An environment variable, added to the job's.", valueName: "NAME=VALUE"))
        var environment: [String] = []

        @Option(name: .customLong("limit"), help: ArgumentHelp("A limit for this run, tighter than the policy's.", valueName: "NAME=VALUE"))
        var limits: [String] = []

        func validate() throws {
            if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be a number of seconds above 0") }
            if follow, options.json { throw ValidationError("--follow prints the output as it comes and --json the final answer: give one of them") }
        }

        func run() async throws {
            let client = try options.makeClient()
            let waiting = wait || follow || timeout != nil
            // Caught from here on, so that a Ctrl-C cannot leave an execution behind unnoticed.
            let interrupts = waiting ? InterruptWatcher() : nil
            try await runClientVerb {
                var body = WireRunRequest()
                if let stdin {
                    let data = try await readInput(stdin, flag: "--stdin")
                    if let text = String(data: data, encoding: .utf8) { body.stdin = text } else { body.stdin_base64 = data.base64EncodedString() }
                }
                if !arguments.isEmpty { body.arguments = arguments }
                if !environment.isEmpty { body.environment = try parsePairs(environment, flag: "--env") }
                if !limits.isEmpty { body.limits = try parsePairs(limits, flag: "--limit") }
                let (job, _) = try await client.job(self.job)

                guard let interrupts else {
                    let (accepted, response) = try await client.fetch(WireRunAccepted.self, "POST", "/executions/\(job.id)/run", json: encodeBody(body))
                    if options.json { printJSON(response) } else { print("execution \(accepted.execution_id) \(accepted.status)") }
                    return
                }
                if follow {
                    try await followOutput(client: client, job: job, body: body, interrupts: interrupts)
                } else {
                    try await follow(client: client, job: job, body: body, interrupts: interrupts)
                }
            }
        }

        /// Runs the job, prints its output as it is produced, and exits like the execution.
        private func followOutput(client: APIClient, job: WireJob, body: WireRunRequest, interrupts: InterruptWatcher) async throws {
            let deadline = timeout.map { ContinuousClock.now + .milliseconds(Int64($0 * 1000)) }
            let (accepted, _) = try await client.fetch(WireRunAccepted.self, "POST", "/executions/\(job.id)/run", json: encodeBody(body))
            let id = accepted.execution_id
            let following = OutputFollowing(client: client, executionID: id, stream: nil, shouldStop: {
                interrupts.fired || deadline.map { ContinuousClock.now >= $0 } == true
            })
            switch try await following.run() {
            case .ended(let execution):
                for note in ExecCommand.notes(execution) { printClientError(note) }
                throw ExitCode(RunExitCode.code(for: execution))
            case .stopped:
                if interrupts.fired { try await cancel(client: client, id: id) }
                printClientError("execution \(id) is still running after \(Display.duration(ms: Int64((timeout ?? 0) * 1000))); "
                                 + "it goes on (see `confine exec show \(id)`, stop it with `confine exec cancel \(id)`)")
                throw ExitCode(ExecCommand.stillRunningExitCode)
            }
        }

        /// Runs the job with a short server-side wait, then polls the execution to its end.
        private func follow(client: APIClient, job: WireJob, body: WireRunRequest, interrupts: InterruptWatcher) async throws {
            let start = ContinuousClock.now
            let deadline = timeout.map { start + .milliseconds(Int64($0 * 1000)) }
            let spinner = Spinner(enabled: !options.json && isatty(2) == 1, label: "job \(job.name) starting")

            // The run request waits on the server for a short while (one round trip for a quick
            // script), short enough for a Ctrl-C to be answered soon.
            var request = body
            request.wait = true
            request.wait_timeout = min(ExecCommand.serverWait, timeout ?? ExecCommand.serverWait)
            let first: (WireExecution, ClientResponse)
            do {
                first = try await client.fetch(WireExecution.self, "POST", "/executions/\(job.id)/run", json: encodeBody(request),
                                               timeout: ExecCommand.serverWait + 30)
            } catch {
                await spinner.stop()
                throw error
            }
            var (execution, response) = first
            let id = execution.id
            var pause = Duration.milliseconds(100)
            while !execution.isFinal {
                spinner.update("execution \(id) \(execution.status)")
                if interrupts.fired {
                    await spinner.stop()
                    try await cancel(client: client, id: id)
                }
                if let deadline, ContinuousClock.now >= deadline {
                    await spinner.stop()
                    if options.json { printJSON(response) }
                    printClientError("execution \(id) is still \(execution.status) after \(Display.duration(ms: Int64((timeout ?? 0) * 1000))); "
                                     + "it goes on (see `confine exec show \(id)`, stop it with `confine exec cancel \(id)`)")
                    throw ExitCode(ExecCommand.stillRunningExitCode)
                }
                try? await Task.sleep(for: pause)
                pause = min(pause + .milliseconds(50), .milliseconds(250))
                if interrupts.fired { continue }
                do {
                    (execution, response) = try await client.fetch(WireExecution.self, "GET", "/executions/\(id)")
                } catch {
                    await spinner.stop()
                    throw error
                }
            }
            await spinner.stop()

            if options.json {
                printJSON(response)
            } else {
                for stream in ["stdout", "stderr"] {
                    let output = try await client.send("GET", "/executions/\(id)/output", query: [("stream", stream)])
                    writeAll(output.body, to: stream == "stdout" ? 1 : 2)
                }
                for note in ExecCommand.notes(execution) { printClientError(note) }
            }
            throw ExitCode(RunExitCode.code(for: execution))
        }

        /// Asks the server to cancel the execution after a Ctrl-C, and exits 120.
        private func cancel(client: APIClient, id: Int64) async throws -> Never {
            do throws(ClientError) {
                let (execution, _) = try await client.fetch(WireExecution.self, "POST", "/executions/\(id)/cancel")
                printClientError("interrupted: execution \(id) \(execution.isFinal ? execution.status : "cancel requested")")
            } catch {
                printClientError("interrupted: cancelling execution \(id): \(error.description)")
            }
            throw ExitCode(RunExitCode.cancelled.rawValue)
        }
    }

    /// `confine exec list [--job ID|NAME] [--status S]… [--verdict V]… [--limit N] [--cursor C]`
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List executions, newest first.",
            discussion: "When more executions follow, the command for the next page is printed on stderr."
        )

        @OptionGroup var options: ClientOptions

        @Option(help: ArgumentHelp("Only the executions of this job (an id or a name).", valueName: "ID|NAME"))
        var job: String?

        @Option(help: ArgumentHelp("Only executions with this status (PENDING, RUNNING, SUCCESS, FAILED, CANCELLED, TIMED_OUT); repeat for several.", valueName: "S"))
        var status: [String] = []

        @Option(help: ArgumentHelp("Only executions with this verdict (exited, signaled, wall_timeout…); repeat for several.", valueName: "V"))
        var verdict: [String] = []

        @Option(help: ArgumentHelp("At most this many executions (1 to 1000; the server's default is 100).", valueName: "N"))
        var limit: Int?

        @Option(help: ArgumentHelp("The next_cursor of a previous page.", valueName: "C"))
        var cursor: String?

        func run() async throws {
            let client = try options.makeClient()
            try await runClientVerb {
                var query: [(String, String)] = []
                if let job {
                    let (found, _) = try await client.job(job)
                    query.append(("job_id", String(found.id)))
                }
                if !status.isEmpty { query.append(("status", status.map { $0.uppercased() }.joined(separator: ","))) }
                if !verdict.isEmpty { query.append(("verdict", verdict.map { $0.lowercased() }.joined(separator: ","))) }
                if let limit { query.append(("limit", String(limit))) }
                if let cursor { query.append(("cursor", cursor)) }
                let (page, response) = try await client.fetch(WireExecutionPage.self, "GET", "/executions", query: query)
                if options.json { printJSON(response); return }

                // Jobs by name, for the JOB column (ids only if the list cannot be had).
                let names = (try? await client.fetch([WireJob].self, "GET", "/jobs").0)
                    .map { Dictionary($0.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a }) } ?? [:]
                var table = Table("ID", "JOB", "STATUS", "VERDICT", "EXIT", "WALL", "CREATED")
                for e in page.executions {
                    table.add([String(e.id), names[e.job_id] ?? String(e.job_id), e.status, e.verdict ?? "-",
                               ExecCommand.exitColumn(e), Display.duration(ms: e.usage?.wall_ms), Display.date(e.created_at)])
                }
                print(table.render(), terminator: "")
                if let next = page.next_cursor {
                    var more = "confine exec list"
                    for (key, value) in [("--job", job), ("--limit", limit.map(String.init))] {
                        if let value { more += " \(key) \(value)" }
                    }
                    for s in status { more += " --status \(s)" }
                    for v in verdict { more += " --verdict \(v)" }
                    printClientError("more: \(more) --cursor \(next)")
                }
            }
        }
    }

    /// `confine exec show ID`
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an execution and its output.")

        @OptionGroup var options: ClientOptions

        @Argument(help: "The execution's id.")
        var id: Int64

        func run() async throws {
            let client = try options.makeClient()
            try await runClientVerb {
                let (execution, response) = try await client.fetch(WireExecution.self, "GET", "/executions/\(id)")
                if options.json { printJSON(response) } else { print(ExecCommand.describe(execution), terminator: "") }
            }
        }
    }

    /// `confine exec cancel ID`
    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel an execution.",
            discussion: "Prints its status once cancelled (or `RUNNING cancel requested` when it has not stopped yet). A finished execution cannot be cancelled (exit 1)."
        )

        @OptionGroup var options: ClientOptions

        @Argument(help: "The execution's id.")
        var id: Int64

        func run() async throws {
            let client = try options.makeClient()
            try await runClientVerb {
                let (execution, response) = try await client.fetch(WireExecution.self, "POST", "/executions/\(id)/cancel")
                if options.json { printJSON(response); return }
                print("execution \(execution.id) \(execution.status)\(execution.isFinal ? "" : " cancel requested")")
            }
        }
    }

    /// `confine exec output ID [--stream stdout|stderr] [-f]`
    struct Output: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print an execution's stdout or stderr, as raw bytes; or follow its output.",
            discussion: """
                With --json: one object {execution_id, stream, truncated, total_bytes, encoding, content}, content \
                being UTF-8 text or base64. With -f/--follow: like `tail -f`, prints both streams (stdout to \
                stdout, stderr to stderr; or the one --stream names) as they are produced, waiting for a pending \
                execution and resuming a dropped connection where it was, then exits like `exec run --wait`: \
                with the execution's exit code.
                """
        )

        enum Stream: String, ExpressibleByArgument, CaseIterable {
            case stdout, stderr
        }

        @OptionGroup var options: ClientOptions

        @Argument(help: "The execution's id.")
        var id: Int64

        @Option(help: "Which stream (default: stdout; with --follow, both).")
        var stream: Stream?

        @Flag(name: [.customShort("f"), .long], help: "Print the output as it is produced, then exit like the execution.")
        var follow = false

        func validate() throws {
            if follow, options.json { throw ValidationError("--follow prints the output as it comes and --json one object: give one of them") }
        }

        func run() async throws {
            let client = try options.makeClient()
            try await runClientVerb {
                if follow {
                    let following = OutputFollowing(client: client, executionID: id, stream: stream?.rawValue, shouldStop: { false })
                    guard case .ended(let execution) = try await following.run() else { return }
                    for note in ExecCommand.notes(execution) { printClientError(note) }
                    throw ExitCode(RunExitCode.code(for: execution))
                }
                let stream = self.stream ?? .stdout
                let output = try await client.send("GET", "/executions/\(id)/output", query: [("stream", stream.rawValue)])
                let truncated = output.header("X-Confine-Truncated") == "true"
                let total = output.header("X-Confine-Total-Bytes").flatMap { Int64($0) }
                if options.json {
                    let text = String(data: output.body, encoding: .utf8)
                    let report = OutputReport(execution_id: id, stream: stream.rawValue, truncated: truncated, total_bytes: total,
                                              encoding: text == nil ? "base64" : "utf-8", content: text ?? output.body.base64EncodedString())
                    writeAll(encodeBody(report) + Data("\n".utf8), to: 1)
                    return
                }
                writeAll(output.body, to: 1)
                if truncated {
                    printClientError("note: \(stream.rawValue) was truncated: \(output.body.count) of \(total.map(String.init) ?? "?") bytes kept")
                }
            }
        }

        /// What `exec output --json` prints.
        struct OutputReport: Encodable {
            var execution_id: Int64
            var stream: String
            var truncated: Bool
            var total_bytes: Int64?
            var encoding: String
            var content: String
        }
    }

    /// The longest wait asked of the server in one run request, in seconds.
    static let serverWait = 1.0

    /// The exit status of `exec run --timeout` when the execution outlasts it (EX_TEMPFAIL).
    static let stillRunningExitCode: Int32 = 75

    /// The EXIT column: the exit code, else the signal's name, else `-`.
    static func exitColumn(_ e: WireExecution) -> String {
        if let code = e.exit_code { return String(code) }
        if let name = e.signal_name { return name }
        if let signal = e.signal { return "signal \(signal)" }
        return "-"
    }

    /// Notes on stderr after `exec run --wait` when the end was not the script's own exit, or
    /// the output was cut.
    static func notes(_ e: WireExecution) -> [String] {
        var notes: [String] = []
        if let verdict = e.verdict, verdict != "exited" {
            var text = "execution \(e.id) \(e.status): \(verdict)"
            if let name = e.signal_name ?? e.signal.map({ "signal \($0)" }) { text += " (\(name))" }
            if let reason = e.reason { text += ": \(reason)" }
            notes.append(text)
        }
        for (name, truncated, total) in [("stdout", e.stdout_truncated, e.stdout_bytes), ("stderr", e.stderr_truncated, e.stderr_bytes)]
        where truncated == true {
            notes.append("note: \(name) was truncated (\(total.map(String.init) ?? "?") bytes written by the script)")
        }
        return notes
    }

    /// An execution as `key: value` lines, then its stdout and stderr.
    static func describe(_ e: WireExecution) -> String {
        var fields = Fields()
        fields.add("id", String(e.id))
        fields.add("job_id", String(e.job_id))
        fields.add("status", e.status)
        fields.add("verdict", e.verdict ?? "-")
        fields.add("exit_code", e.exit_code.map(String.init) ?? "-")
        if let signal = e.signal { fields.add("signal", "\(signal)" + (e.signal_name.map { " (\($0))" } ?? "")) }
        if let reason = e.reason { fields.add("reason", reason) }
        if let type = e.script_type { fields.add("script_type", type) }
        if let policy = e.policy { fields.add("policy", policy) }
        if let arguments = e.arguments { fields.add("arguments", Display.arguments(arguments)) }
        if let priority = e.priority { fields.add("priority", String(priority)) }
        fields.add("created_at", e.created_at)
        fields.add("started_at", e.started_at ?? "-")
        fields.add("finished_at", e.finished_at ?? "-")
        if let usage = e.usage {
            fields.add("wall", Display.duration(ms: usage.wall_ms))
            fields.add("cpu", Display.duration(ms: usage.cpu_ms))
            fields.add("memory_peak", Display.bytes(usage.memory_peak_bytes))
        }
        if let worker = e.worker { fields.add("worker", worker) }
        if e.cancel_requested == true { fields.add("cancel_requested", "true") }
        if let weaker = e.weaker_isolation, !weaker.isEmpty {
            fields.add("weaker_isolation", "without " + weaker.joined(separator: ", ") + " (allow_weaker)")
        }
        var text = fields.render()
        for (name, content, encoding, invalid, bytes, truncated) in [
            ("stdout", e.stdout, e.stdout_encoding, e.stdout_invalid_utf8, e.stdout_bytes, e.stdout_truncated),
            ("stderr", e.stderr, e.stderr_encoding, e.stderr_invalid_utf8, e.stderr_bytes, e.stderr_truncated),
        ] {
            var header = "--- \(name)"
            if let bytes { header += " (\(bytes) bytes" + (truncated == true ? ", truncated" : "") + ")" }
            text += header + " ---\n"
            guard let content else { continue }
            if encoding == "base64" {
                text += "(not UTF-8 text: see `confine exec output \(e.id) --stream \(name)`)\n"
                continue
            }
            text += content
            if !content.isEmpty && !content.hasSuffix("\n") { text += "\n" }
            if invalid == true { text += "(bytes that are not UTF-8 shown as \u{FFFD}: see `confine exec output \(e.id) --stream \(name)`)\n" }
        }
        return text
    }
}

extension RunExitCode {
    /// The exit status of `confine exec run --wait` for a finished execution: the same as
    /// `confine run`'s for the same verdict; `interrupted` (the server stopped during the run)
    /// counts as a setup failure.
    static func code(for execution: WireExecution) -> Int32 {
        guard let verdict = execution.verdict.flatMap(ExecutionVerdict.init(rawValue:)) else {
            switch execution.status {
            case "SUCCESS": return 0
            case "CANCELLED": return cancelled.rawValue
            case "TIMED_OUT": return wallTimeout.rawValue
            default: return execution.exit_code ?? 1
            }
        }
        switch verdict {
        case .exited: return execution.exit_code ?? 0
        case .signaled: return 128 + (execution.signal ?? 0)
        case .wallTimeout: return wallTimeout.rawValue
        case .cpuTimeout: return cpuTimeout.rawValue
        case .memoryLimit: return memoryLimit.rawValue
        case .outputLimit: return outputLimit.rawValue
        case .cancelled: return cancelled.rawValue
        case .setupFailed, .interrupted: return setupFailed.rawValue
        }
    }
}

/// SIGINT and SIGTERM, caught (instead of ending the process) while `exec run --wait` waits.
final class InterruptWatcher: @unchecked Sendable {
    private let flag = Atomic<Bool>(false)
    // Set once in init; only cancelled in deinit.
    private var sources: [DispatchSourceSignal] = []

    init() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in self?.flag.store(true, ordering: .relaxed) }
            source.resume()
            sources.append(source)
        }
    }

    deinit { sources.forEach { $0.cancel() } }

    /// Whether a signal came.
    var fired: Bool { flag.load(ordering: .relaxed) }
}

/// The `⠋ execution 7 RUNNING 3.2s` line on stderr (a terminal) while `exec run --wait` waits,
/// redrawn every 100 ms and cleared at the end.
final class Spinner: Sendable {
    private static let frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]
    private let label: Mutex<String>
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    init(enabled: Bool, label: String) {
        self.label = Mutex(label)
        guard enabled else { return }
        let start = ContinuousClock.now
        task.withLock {
            $0 = Task { [self] in
                var frame = 0
                while !Task.isCancelled {
                    let elapsed = ContinuousClock.now - start
                    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                    let text = "\r\u{1B}[2K\(Self.frames[frame % Self.frames.count]) \(self.label.withLock { $0 }) \(String(format: "%.1f", seconds))s"
                    writeAll(Data(text.utf8), to: 2)
                    frame += 1
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
        }
    }

    func update(_ label: String) { self.label.withLock { $0 = label } }

    /// Stops redrawing and clears the line.
    func stop() async {
        guard let task = task.withLock({ value -> Task<Void, Never>? in defer { value = nil }; return value }) else { return }
        task.cancel()
        await task.value
        writeAll(Data("\r\u{1B}[2K".utf8), to: 2)
    }
}
