import ArgumentParser
import Foundation
import Wire

extension ExecCommand {
    /// `confine exec run JOB [--wait] [--timeout SECONDS] [--stdin FILE] [--arg A]… [--env N=V]… [--limit N=V]…`, or
    /// `confine exec run --script FILE --type TYPE [--policy NAME] …` (an ad-hoc run: no job stored).
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a job, or a script in one call (--script FILE --type TYPE).",
            discussion: """
                With --script FILE ('-': this process's stdin) and --type (python, bash, …), the script \
                is sent with the run (POST /executions) and no job is stored. \
                Prints the new execution's id on stderr as soon as the server has it. Without --wait, \
                also prints its id and status on stdout and returns at once. With --wait, follows the execution to its end, prints its \
                stdout and stderr (raw bytes, to this process's stdout and stderr), then the summary line \
                `confine run` prints (on stderr), and exits like it: its exit code; 128+N when it \
                died of signal N; \(RunExitCode.wallTimeout.rawValue) wall_timeout, \(RunExitCode.cpuTimeout.rawValue) cpu_timeout, \
                \(RunExitCode.memoryLimit.rawValue) memory_limit, \(RunExitCode.outputLimit.rawValue) output_limit, \
                \(RunExitCode.cancelled.rawValue) cancelled, \(RunExitCode.setupFailed.rawValue) setup_failed or interrupted; \
                \(ExecCommand.stillRunningExitCode) when --timeout passed first (the execution goes on). \
                Ctrl-C while waiting cancels the execution. With --follow, the output is printed as it is \
                produced (like `tail -f`; a dropped connection is resumed where it was), then it exits the same way.
                """
        )

        @OptionGroup var options: ClientOptions

        @Argument(help: "The job: its id or its name (not with --script).")
        var job: String?

        @Option(help: ArgumentHelp("Run this script file without storing a job ('-': this process's stdin).", valueName: "FILE"))
        var script: String?

        @Option(name: .customLong("type"), help: ArgumentHelp("The script's type with --script (python, bash, …).", valueName: "TYPE"))
        var scriptType: String?

        @Option(help: ArgumentHelp("The policy of a --script run (default: the server's default).", valueName: "NAME"))
        var policy: String?

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

        @Option(help: ArgumentHelp("Queue priority, -100 to 100 (higher runs first; default 0; a token may cap it).", valueName: "N"))
        var priority: Int?

        @Option(name: .customLong("file"), help: ArgumentHelp("A local file written at PATH (default: its name) in the run's working directory (repeat for several).", valueName: "LOCAL[:PATH]"))
        var files: [String] = []

        @Option(name: .customLong("output"), help: ArgumentHelp("A glob of files to collect from the working directory after the run (repeat for several; see `exec files`).", valueName: "PATTERN"))
        var outputs: [String] = []

        func validate() throws {
            if job != nil, script != nil { throw ValidationError("give a JOB or --script FILE, not both") }
            if job == nil, script == nil { throw ValidationError("give the JOB to run, or --script FILE --type TYPE") }
            if script != nil, scriptType == nil { throw ValidationError("--script needs --type (python, bash, …)") }
            if script == nil, scriptType != nil || policy != nil { throw ValidationError("--type and --policy go with --script") }
            if script == "-", stdin == "-" { throw ValidationError("--script - and --stdin - cannot both read this process's stdin") }
            if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be a number of seconds above 0") }
            if let priority, !(-100...100).contains(priority) { throw ValidationError("--priority must be from -100 to 100, got \(priority)") }
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
                if !files.isEmpty { body.files = try await readInputFiles(files, flag: "--file") }
                if !outputs.isEmpty { body.outputs = outputs }
                body.priority = priority
                let target = try await target(client: client, options: body)

                guard let interrupts else {
                    let (accepted, response) = try await client.fetch(WireRunAccepted.self, "POST", target.path, json: target.body(nil, nil))
                    printClientError("execution \(accepted.execution_id) submitted (\(target.label))")
                    if options.json { printJSON(response) } else { print("execution \(accepted.execution_id) \(accepted.status)") }
                    return
                }
                if follow {
                    try await followOutput(client: client, target: target, interrupts: interrupts)
                } else {
                    try await follow(client: client, target: target, interrupts: interrupts)
                }
            }
        }

        /// Where a run is asked for and its body: a job's run, or an ad-hoc run of a script.
        struct Target {
            var path: String
            var label: String
            /// The body, with `wait` and `wait_timeout` when given.
            var body: (Bool?, Double?) -> Data
        }

        private func target(client: APIClient, options: WireRunRequest) async throws -> Target {
            if let script, let scriptType {
                let data = try await readInput(script, flag: "--script")
                guard let content = String(data: data, encoding: .utf8) else {
                    throw ClientError.input("--script \(script) is not UTF-8 text")
                }
                return Target(path: "/executions", label: "\(scriptType) script") { wait, timeout in
                    encodeBody(WireAdHocRunRequest(script_type: scriptType, script_content: content, policy: policy,
                                                   stdin: options.stdin, stdin_base64: options.stdin_base64,
                                                   arguments: options.arguments, environment: options.environment,
                                                   limits: options.limits, priority: options.priority, wait: wait, wait_timeout: timeout,
                                                   files: options.files, outputs: options.outputs))
                }
            }
            let (job, _) = try await client.job(self.job ?? "")
            return Target(path: "/executions/\(job.id)/run", label: "job \(job.name)") { wait, timeout in
                var request = options
                request.wait = wait
                request.wait_timeout = timeout
                return encodeBody(request)
            }
        }

        /// Runs the job, prints its output as it is produced, and exits like the execution.
        private func followOutput(client: APIClient, target: Target, interrupts: InterruptWatcher) async throws {
            let deadline = timeout.map { ContinuousClock.now + .milliseconds(Int64($0 * 1000)) }
            let (accepted, _) = try await client.fetch(WireRunAccepted.self, "POST", target.path, json: target.body(nil, nil))
            let id = accepted.execution_id
            printClientError("execution \(id) submitted (\(target.label))")
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
        private func follow(client: APIClient, target: Target, interrupts: InterruptWatcher) async throws {
            let start = ContinuousClock.now
            let deadline = timeout.map { start + .milliseconds(Int64($0 * 1000)) }
            let spinner = Spinner(enabled: !options.json && isatty(2) == 1, label: "\(target.label) starting")

            // The run request waits on the server for a short while (one round trip for a quick
            // script), short enough for a Ctrl-C to be answered soon.
            let body = target.body(true, min(ExecCommand.serverWait, timeout ?? ExecCommand.serverWait))
            let first: (WireExecution, ClientResponse)
            do {
                first = try await client.fetch(WireExecution.self, "POST", target.path, json: body,
                                               timeout: ExecCommand.serverWait + 30)
            } catch {
                await spinner.stop()
                throw error
            }
            var (execution, response) = first
            let id = execution.id
            spinner.note("execution \(id) submitted (\(target.label))")
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
            }
            for note in ExecCommand.notes(execution) { printClientError(note) }
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
}
