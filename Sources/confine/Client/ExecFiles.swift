import ArgumentParser
import Foundation
import Wire

extension ExecCommand {
    /// `confine exec files ID [--get PATH [-o LOCAL]]`
    struct Files: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the files collected from an execution's working directory, or download one.",
            discussion: """
                Without --get: one line per collected file (size, SHA-256, path), then the files that matched \
                its outputs but were skipped, with why. With --get PATH: the file's bytes, to stdout or to the \
                file -o names (checked against the server's SHA-256).
                """
        )

        @OptionGroup var options: ClientOptions

        @Argument(help: "The execution's id.")
        var id: Int64

        @Option(help: ArgumentHelp("The collected file to download (its path as listed).", valueName: "PATH"))
        var get: String?

        @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("Where to write the downloaded file (default: stdout).", valueName: "LOCAL"))
        var output: String?

        func validate() throws {
            if output != nil, get == nil { throw ValidationError("-o goes with --get PATH") }
        }

        func run() async throws {
            let client = try options.makeClient()
            try await runClientVerb {
                guard let get else {
                    let (list, response) = try await client.fetch(WireArtifactList.self, "GET", "/executions/\(id)/files")
                    if options.json { printJSON(response); return }
                    for file in list.files { print("\(file.size)\t\(file.sha256)\t\(file.path)") }
                    for skipped in list.skipped { printClientError("skipped \(skipped.path): \(skipped.reason)") }
                    return
                }
                let escaped = get.split(separator: "/", omittingEmptySubsequences: false).map { APIClient.escape(String($0)) }
                    .joined(separator: "/")
                let answer = try await client.send("GET", "/executions/\(id)/files/\(escaped)")
                guard let output else {
                    writeAll(answer.body, to: 1)
                    return
                }
                do {
                    try answer.body.write(to: URL(fileURLWithPath: output))
                } catch {
                    throw ClientError.input("-o \(output): \((error as NSError).localizedDescription)")
                }
            }
        }
    }
}
