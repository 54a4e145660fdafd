import ArgumentParser
import Dispatch
import Foundation
import HumanText
import Sandbox

/// `confine run`: one program, under one policy, reported precisely.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run one program in the sandbox.",
        discussion: """
            PROGRAM is resolved inside the sandbox: an absolute path, or a name looked up in the \
            policy's PATH. Host files reach the sandbox only through --file.

            Exit status: the program's exit code; 128+N when it died of signal N; and for limits:
              \(RunExitCode.wallTimeout.rawValue) wall_timeout    \(RunExitCode.cpuTimeout.rawValue) cpu_timeout    \(RunExitCode.memoryLimit.rawValue) memory_limit
              \(RunExitCode.outputLimit.rawValue) output_limit    \(RunExitCode.cancelled.rawValue) cancelled      \(RunExitCode.setupFailed.rawValue) setup_failed
              \(RunExitCode.badPolicy.rawValue)  the policy or a --limit/--env/--file is invalid
            """
    )

    @Option(name: .long, help: "Policy name (in the policies folder) or path to a policy file.")
    var policy: String = "default"

    @Option(name: .long, help: "A file whose bytes are the program's stdin.")
    var stdin: String?

    @Flag(name: .long, help: "Print exactly one JSON object describing the run on stdout.")
    var json = false

    @Option(name: .customLong("limit"), help: ArgumentHelp("A tighter limit for this run, e.g. --limit memory=64MiB --limit wall_time=2s.", valueName: "NAME=VALUE"))
    var limits: [String] = []

    @Option(name: .customLong("env"), help: ArgumentHelp("An environment variable the policy allows.", valueName: "NAME=VALUE"))
    var environment: [String] = []

    @Option(name: .customLong("file"), help: ArgumentHelp("Deliver a host file read-only, at TARGET or /sandbox/BASENAME.", valueName: "HOST_PATH[:TARGET]"))
    var files: [String] = []

    @Argument(parsing: .postTerminator, help: "The program and its arguments (after --).")
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("give the program to run after --, e.g. confine run -- /bin/echo hello") }
    }

    func run() async throws {
        let request: RunRequest
        do { request = try makeRequest() } catch {
            printError(error.description)
            throw ExitCode(RunExitCode.badPolicy.rawValue)
        }
        let sandbox: Sandbox
        var configuration = SandboxConfiguration()
        configuration.warmPoolSize = 0  // one run: nothing to prepare ahead
        do { sandbox = try Sandbox(configuration: configuration) } catch {
            printError("confine: \(error)")
            throw ExitCode(RunExitCode.setupFailed.rawValue)
        }

        var live = request
        if !json {
            // Stream the program's output to our own as it arrives.
            live.onOutput = { chunk in
                let fd: Int32 = chunk.stream == .stdout ? 1 : 2
                chunk.bytes.withUnsafeBytes { buffer in
                    var offset = 0
                    while offset < buffer.count {
                        let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                        if n <= 0 { break }
                        offset += n
                    }
                }
            }
        }
        let handle: RunHandle
        do { handle = try sandbox.start(live) } catch {
            printError("confine: \(error)")
            throw ExitCode(RunExitCode.badPolicy.rawValue)
        }
        // Ctrl-C or a TERM to confine cancels the run (and so kills the whole sandbox).
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let sources = [SIGINT, SIGTERM].map { sig in
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { handle.cancel() }
            source.resume()
            return source
        }
        let result = await handle.result()
        sources.forEach { $0.cancel() }

        if json {
            print(String(decoding: try RunReport(result).encoded(), as: UTF8.self))
        } else {
            printError("confine: \(result.summary)")
            if let denied = result.denied, !denied.isEmpty { printError("confine: refused: \(denied.reportText)") }
        }
        for note in hostFileNotes(policy: request.policy) { printError(note) }
        throw ExitCode(RunExitCode.code(for: result))
    }

    private func makeRequest() throws(RunCommandError) -> RunRequest {
        var policy: Policy
        do { policy = try PolicyLoader.resolve(nameOrPath: self.policy, directory: PolicyDirectory.locate()) } catch {
            throw RunCommandError(description: "\(error)")
        }
        var overrides = LimitOverrides()
        for text in limits {
            do { try overrides.add(parsing: text) } catch { throw RunCommandError(description: "confine: --limit \(text): \(error)") }
        }
        do { policy = try policy.applying(overrides) } catch { throw RunCommandError(description: "confine: \(error)") }

        var env: [String: String] = [:]
        for item in environment {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw RunCommandError(description: "confine: --env \(item): expected NAME=VALUE")
            }
            env[String(item[..<eq])] = String(item[item.index(after: eq)...])
        }

        let delivered = try Self.deliveredFiles(files)

        var input: [UInt8]?
        if let stdin {
            guard let data = FileManager.default.contents(atPath: stdin) else {
                throw RunCommandError(description: "confine: --stdin \(stdin): cannot read the file")
            }
            input = Array(data)
        }
        return RunRequest(policy: policy, command: command, stdin: input, files: delivered, environment: env)
    }

    /// The host files of `--file HOST_PATH[:TARGET]` options, read (at TARGET, or /sandbox/BASENAME).
    static func deliveredFiles(_ specs: [String]) throws(RunCommandError) -> [SandboxFile] {
        var delivered: [SandboxFile] = []
        for spec in specs {
            let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
            guard let host = parts.first else { throw RunCommandError(description: "confine: --file needs HOST_PATH[:TARGET]") }
            let target = parts.count > 1 ? parts[1] : "/sandbox/" + URL(fileURLWithPath: host).lastPathComponent
            guard let data = FileManager.default.contents(atPath: host) else {
                throw RunCommandError(description: "confine: --file \(spec): cannot read \(host)")
            }
            let executable = FileManager.default.isExecutableFile(atPath: host)
            delivered.append(SandboxFile(path: target, contents: Array(data), executable: executable))
        }
        return delivered
    }

    /// Arguments that name host files the sandbox cannot see: the usual reason a script is
    /// "not found" inside. Host files reach the sandbox only through --file.
    private func hostFileNotes(policy: Policy) -> [String] {
        let delivered = Set(files.map { String($0.split(separator: ":", maxSplits: 1)[0]) })
        let visible = policy.filesystem.readOnly.map(\.source)
        return command.filter { arg in
            var isDirectory: ObjCBool = false
            guard !delivered.contains(arg), arg.contains("/") || arg.contains("."),
                  FileManager.default.fileExists(atPath: arg, isDirectory: &isDirectory), !isDirectory.boolValue else { return false }
            let absolute = URL(fileURLWithPath: arg).standardizedFileURL.path
            return arg.hasPrefix("/") ? !visible.contains { absolute == $0 || absolute.hasPrefix($0 + "/") } : true
        }.map { "confine: note: \($0) is a file on the host, which the sandbox does not see; deliver it with --file \($0) (it appears at /sandbox/\(URL(fileURLWithPath: $0).lastPathComponent))" }
    }

    private func printError(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}

struct RunCommandError: Error, CustomStringConvertible {
    var description: String
}

/// The documented exit statuses of `confine run` for outcomes other than the program's own.
enum RunExitCode: Int32 {
    case wallTimeout = 124
    case cpuTimeout = 123
    case memoryLimit = 122
    case outputLimit = 121
    case cancelled = 120
    case setupFailed = 125
    case badPolicy = 78

    static func code(for result: RunResult) -> Int32 {
        switch result.verdict {
        case .exited: return result.exitCode ?? 0
        case .signaled: return 128 + (result.signal ?? 0)
        case .wallTimeout: return wallTimeout.rawValue
        case .cpuTimeout: return cpuTimeout.rawValue
        case .memoryLimit: return memoryLimit.rawValue
        case .outputLimit: return outputLimit.rawValue
        case .cancelled: return cancelled.rawValue
        case .setupFailed: return setupFailed.rawValue
        }
    }
}

/// The JSON object `confine run --json` prints.
struct RunReport: Encodable {
    let result: RunResult

    init(_ result: RunResult) { self.result = result }

    enum Keys: String, CodingKey {
        case verdict, exit_code, signal, wall_ms, cpu_ms, memory_peak_bytes, stdout, stderr
        case stdout_bytes, stderr_bytes, stdout_truncated, stderr_truncated, error
        case stdout_encoding, stderr_encoding, signal_name, oom_kills, error_stage, error_errno, denied
    }

    /// One refused call in `denied`.
    struct Denied: Encodable {
        let call: DeniedCall
        enum Keys: String, CodingKey { case syscall, count, action, first_at_ms }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(call.syscall, forKey: .syscall)
            try c.encode(call.count, forKey: .count)
            try c.encode(call.action.rawValue, forKey: .action)
            try c.encode(call.firstAtMs, forKey: .first_at_ms)
        }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(result.verdict.rawValue, forKey: .verdict)
        try c.encode(result.exitCode, forKey: .exit_code)
        try c.encode(result.signal, forKey: .signal)
        try c.encode(result.signal.map { SignalName.name($0) }, forKey: .signal_name)
        try c.encode(result.wallMs, forKey: .wall_ms)
        try c.encode(result.cpuMs, forKey: .cpu_ms)
        try c.encode(result.memoryPeakBytes, forKey: .memory_peak_bytes)
        for (bytes, text, encoding) in [(result.stdout, Keys.stdout, Keys.stdout_encoding), (result.stderr, .stderr, .stderr_encoding)] {
            if let string = String(validating: bytes, as: UTF8.self) {
                try c.encode(string, forKey: text)
                try c.encode("utf-8", forKey: encoding)
            } else {
                try c.encode(Data(bytes).base64EncodedString(), forKey: text)
                try c.encode("base64", forKey: encoding)
            }
        }
        try c.encode(result.stdoutBytes, forKey: .stdout_bytes)
        try c.encode(result.stderrBytes, forKey: .stderr_bytes)
        try c.encode(result.stdoutTruncated, forKey: .stdout_truncated)
        try c.encode(result.stderrTruncated, forKey: .stderr_truncated)
        try c.encode(result.oomKills, forKey: .oom_kills)
        try c.encode(result.setupFailure?.description, forKey: .error)
        try c.encode(result.setupFailure?.stage, forKey: .error_stage)
        try c.encode(result.setupFailure?.errno, forKey: .error_errno)
        try c.encode(result.denied?.map(Denied.init), forKey: .denied)
    }

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}
