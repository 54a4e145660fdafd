import ArgumentParser
import Foundation

extension ExecCommand {
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
}
