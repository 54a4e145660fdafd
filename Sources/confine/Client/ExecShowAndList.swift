import ArgumentParser
import Foundation
import Wire

extension ExecCommand {
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
                    table.add([String(e.id), e.job_id.map { names[$0] ?? String($0) } ?? "-", e.status, e.verdict ?? "-",
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
}
