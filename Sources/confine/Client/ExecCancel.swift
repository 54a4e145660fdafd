import ArgumentParser
import Foundation
import Wire

extension ExecCommand {
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
}
