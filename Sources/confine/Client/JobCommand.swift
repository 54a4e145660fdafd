import ArgumentParser
import Foundation
import Wire

/// `confine job …`: the jobs of a Confine server (`confine serve`), over its REST API.
struct JobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job",
        abstract: "Create, list, show, change and delete jobs on a Confine server.",
        discussion: """
            A job is a named script (its type picks the interpreter) with a policy, limits, \
            arguments and environment; run it with `confine exec run JOB`. JOB is an id or a name.

            Exit status: 0 done; 1 the server refused (the reason is printed); 64 bad usage; \
            66 an input file cannot be read; 69 the server cannot be reached or failed.
            """,
        subcommands: [Create.self, List.self, Show.self, Update.self, Delete.self]
    )

    /// How many executions of the job may be PENDING or RUNNING at once.
    enum Concurrency: String, ExpressibleByArgument, CaseIterable {
        case forbid, queue, allow
    }

    /// `confine job create NAME --type TYPE (--file PATH | --script TEXT) …`
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a job.")

        @OptionGroup var options: ClientOptions

        @Argument(help: "The job's name (unique; no '/' or control characters).")
        var name: String

        @Option(name: .customLong("type"), help: ArgumentHelp("The script type, one of the server's runtimes (python, bash…).", valueName: "TYPE"))
        var scriptType: String

        @OptionGroup var script: ScriptSource

        @Option(help: "The policy the job runs under (default: the server's \"default\").")
        var policy: String?

        @Option(name: .customLong("limit"), help: ArgumentHelp("A limit tighter than the policy's, e.g. --limit memory=64MiB --limit wall_time=2s.", valueName: "NAME=VALUE"))
        var limits: [String] = []

        @Option(help: "What a run does while another of the job's executions is PENDING or RUNNING (default: forbid).")
        var concurrency: Concurrency?

        @Option(name: .customLong("arg"), help: ArgumentHelp("An argument of the script (repeat for several).", valueName: "A"))
        var arguments: [String] = []

        @Option(name: .customLong("env"), help: ArgumentHelp("An environment variable the policy allows.", valueName: "NAME=VALUE"))
        var environment: [String] = []

        @Option(name: .customLong("secret-env"), help: ArgumentHelp("A secret variable the policy allows: stored encrypted, never shown again (NAME=@FILE reads the value from FILE).", valueName: "NAME=VALUE"))
        var secrets: [String] = []

        @Option(name: .customLong("input"), help: ArgumentHelp("A local file written at PATH (default: its name) in each run's working directory (repeat for several; --file is the script).", valueName: "LOCAL[:PATH]"))
        var inputs: [String] = []

        func validate() throws {
            if !script.isGiven { throw ValidationError("give the script with --file PATH or --script TEXT") }
        }

        func run() async throws {
            let client = try options.makeClient()
            try await runClientVerb {
                var body = WireJobBody(name: name, script_type: scriptType, policy: policy, concurrency: concurrency?.rawValue)
                body.script_content = try await script.content()
                if !limits.isEmpty { body.limits = try parsePairs(limits, flag: "--limit") }
                if !arguments.isEmpty { body.arguments = arguments }
                if !environment.isEmpty { body.environment = try parsePairs(environment, flag: "--env") }
                if !secrets.isEmpty { body.secret_environment = try await secretValues(secrets) }
                if !inputs.isEmpty || !script.inputFiles.isEmpty {
                    body.files = try await readInputFiles(script.inputFiles, flag: "--file") + readInputFiles(inputs, flag: "--input")
                }
                let (job, response) = try await client.fetch(WireJob.self, "POST", "/jobs", json: encodeBody(body))
                if options.json { printJSON(response) } else { print("job \(job.id) \(job.name) created") }
            }
        }
    }

    /// `confine job list [--type TYPE]`
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the jobs, oldest first.")

        @OptionGroup var options: ClientOptions

        @Option(name: .customLong("type"), help: ArgumentHelp("Only jobs of this script type.", valueName: "TYPE"))
        var scriptType: String?

        func run() async throws {
            let client = try options.makeClient()
            try await runClientVerb {
                let query = scriptType.map { [("script_type", $0)] } ?? []
                let (jobs, response) = try await client.fetch([WireJob].self, "GET", "/jobs", query: query)
                if options.json { printJSON(response); return }
                var table = Table("ID", "NAME", "TYPE", "POLICY", "CONCURRENCY", "UPDATED")
                for job in jobs {
                    table.add([String(job.id), job.name, job.script_type, job.policy, job.concurrency, Display.date(job.updated_at)])
                }
                print(table.render(), terminator: "")
            }
        }
    }

    /// `confine job show ID|NAME`
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a job and its script.")

        @OptionGroup var options: ClientOptions

        @Argument(help: "The job: its id or its name.")
        var job: String

        func run() async throws {
            let client = try options.makeClient()
            try await runClientVerb {
                let (job, response) = try await client.job(self.job)
                if options.json { printJSON(response) } else { print(JobCommand.describe(job), terminator: "") }
            }
        }
    }

    /// `confine job update ID|NAME [--name N] [--type T] [--file PATH | --script TEXT] …`
    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a job.",
            discussion: "Only the given fields change. --limit, --arg and --env replace the job's limits, arguments and environment as a whole; --secret-env sets secret variables and keeps the job's others."
        )

        @OptionGroup var options: ClientOptions

        @Argument(help: "The job: its id or its name.")
        var job: String

        @Option(help: "A new name.")
        var name: String?

        @Option(name: .customLong("type"), help: ArgumentHelp("A new script type.", valueName: "TYPE"))
        var scriptType: String?

        @OptionGroup var script: ScriptSource

        @Option(help: "A new policy.")
        var policy: String?

        @Option(name: .customLong("limit"), help: ArgumentHelp("The job's limits (replacing all of them).", valueName: "NAME=VALUE"))
        var limits: [String] = []

        @Option(help: "A new concurrency.")
        var concurrency: Concurrency?

        @Option(name: .customLong("arg"), help: ArgumentHelp("The job's arguments (replacing all of them).", valueName: "A"))
        var arguments: [String] = []

        @Option(name: .customLong("env"), help: ArgumentHelp("The job's environment (replacing all of it).", valueName: "NAME=VALUE"))
        var environment: [String] = []

        @Option(name: .customLong("input"), help: ArgumentHelp("The job's input files (replacing all of them): LOCAL written at PATH (default: its name).", valueName: "LOCAL[:PATH]"))
        var inputs: [String] = []

        @Option(name: .customLong("secret-env"), help: ArgumentHelp("Set a secret variable, keeping the job's others (NAME=@FILE reads the value from FILE).", valueName: "NAME=VALUE"))
        var secrets: [String] = []

        @Option(name: .customLong("remove-secret-env"), help: ArgumentHelp("Remove the job's secret variable NAME.", valueName: "NAME"))
        var removedSecrets: [String] = []

        func validate() throws {
            if name == nil, scriptType == nil, !script.isGiven, script.inputFiles.isEmpty, policy == nil, limits.isEmpty,
               concurrency == nil, arguments.isEmpty, environment.isEmpty, inputs.isEmpty, secrets.isEmpty, removedSecrets.isEmpty {
                throw ValidationError("nothing to change: give --name, --type, --file, --script, --policy, --limit, --concurrency, --arg, --env, "
                                      + "--input, --secret-env or --remove-secret-env")
            }
            let set = Set(secrets.map { String($0.prefix(while: { $0 != "=" })) })
            if let both = removedSecrets.first(where: set.contains) {
                throw ValidationError("--secret-env \(both)=… and --remove-secret-env \(both): give one of them")
            }
        }

        func run() async throws {
            let client = try options.makeClient()
            try await runClientVerb {
                var body = WireJobBody(name: name, script_type: scriptType, policy: policy, concurrency: concurrency?.rawValue)
                if script.isGiven { body.script_content = try await script.content() }
                if !limits.isEmpty { body.limits = try parsePairs(limits, flag: "--limit") }
                if !arguments.isEmpty { body.arguments = arguments }
                if !environment.isEmpty { body.environment = try parsePairs(environment, flag: "--env") }
                if !inputs.isEmpty || !script.inputFiles.isEmpty {
                    body.files = try await readInputFiles(script.inputFiles, flag: "--file") + readInputFiles(inputs, flag: "--input")
                }
                if !secrets.isEmpty { body.secret_environment = try await secretValues(secrets) }
                var json = encodeBody(body)
                if !removedSecrets.isEmpty {
                    // A secret is removed by a null value, which the wire type cannot hold.
                    var object = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] ?? [:]
                    var merged = object["secret_environment"] as? [String: Any] ?? [:]
                    for name in removedSecrets { merged[name] = NSNull() }
                    object["secret_environment"] = merged
                    json = (try? JSONSerialization.data(withJSONObject: object)) ?? json
                }
                let (current, _) = try await client.job(job)
                let (job, response) = try await client.fetch(WireJob.self, "PATCH", "/jobs/\(current.id)", json: json)
                if options.json { printJSON(response); return }
                print("job \(job.id) \(job.name) updated")
                if let cleared = job.secret_environment_cleared, !cleared.isEmpty {
                    printClientError("the new script, type or policy cleared the secret variables \(cleared.joined(separator: ", ")); "
                                     + "set them again with --secret-env")
                }
            }
        }
    }

    /// `confine job delete ID|NAME`
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a job (and its finished executions).",
            discussion: "Refused while one of the job's executions is PENDING or RUNNING."
        )

        @OptionGroup var options: ClientOptions

        @Argument(help: "The job: its id or its name.")
        var job: String

        func run() async throws {
            let client = try options.makeClient()
            try await runClientVerb {
                let (current, _) = try await client.job(job)
                let (job, response) = try await client.fetch(WireJob.self, "DELETE", "/jobs/\(current.id)")
                if options.json { printJSON(response) } else { print("job \(job.id) \(job.name) deleted") }
            }
        }
    }

    /// A job as `key: value` lines, its script last.
    static func describe(_ job: WireJob) -> String {
        var fields = Fields()
        fields.add("id", String(job.id))
        fields.add("name", job.name)
        fields.add("script_type", job.script_type)
        fields.add("policy", job.policy)
        fields.add("concurrency", job.concurrency)
        fields.add("limits", Display.pairs(job.limits.mapValues(\.description)))
        fields.add("arguments", Display.arguments(job.arguments))
        fields.add("environment", Display.pairs(job.environment))
        fields.add("created_at", job.created_at)
        fields.add("updated_at", job.updated_at)
        var text = fields.render()
        text += "--- script_content (\(job.script_content.utf8.count) bytes) ---\n"
        text += job.script_content
        if !job.script_content.isEmpty && !job.script_content.hasSuffix("\n") { text += "\n" }
        return text
    }
}

/// Where a job's script comes from: `--file PATH` (`-` for stdin) or `--script TEXT`.
struct ScriptSource: ParsableArguments {
    @Option(help: ArgumentHelp("The script's file ('-': read it from stdin); given again, or with --script: an input file LOCAL[:PATH] written in each run's working directory.", valueName: "PATH"))
    var file: [String] = []

    @Option(help: ArgumentHelp("The script itself.", valueName: "TEXT"))
    var script: String?

    /// Which --file is the script: the first without a `:PATH`, unless --script gives the script.
    private var scriptIndex: Int? { script == nil ? file.firstIndex { !$0.contains(":") } : nil }

    /// The file holding the script.
    var scriptFile: String? { scriptIndex.map { file[$0] } }

    /// The --file flags that are input files: every LOCAL:PATH, and with --script (or after the
    /// script's) every other.
    var inputFiles: [String] { file.indices.filter { $0 != scriptIndex }.map { file[$0] } }

    /// Whether the script itself is given.
    var isGiven: Bool { script != nil || scriptIndex != nil }

    /// The script's text (a file must be UTF-8: the API carries scripts as JSON strings).
    func content() async throws(ClientError) -> String {
        if let script { return script }
        guard let file = scriptFile else { return "" }
        let data = try await readInput(file, flag: "--file")
        guard let text = String(data: data, encoding: .utf8) else { throw .input("--file \(file): the script is not UTF-8 text") }
        return text
    }
}

extension APIClient {
    /// The job `reference` names: an id (`42`) or a name. A number that is no job's id is also
    /// tried as a name, since a job may be called `42`.
    func job(_ reference: String) async throws(ClientError) -> (WireJob, ClientResponse) {
        if let id = Int64(reference), id >= 1, String(id) == reference {
            do throws(ClientError) {
                return try await fetch(WireJob.self, "GET", "/jobs/\(id)")
            } catch {
                guard error.isNotFound else { throw error }
                if let named = try? await fetch(WireJob.self, "GET", "/jobs/by_name/\(reference)") { return named }
                throw error
            }
        }
        return try await fetch(WireJob.self, "GET", "/jobs/by_name/" + APIClient.escape(reference))
    }
}

/// `--secret-env NAME=VALUE` flags; `NAME=@FILE` reads the value from FILE (so that it stays
/// out of the shell's history and `ps`), without its final newline.
func secretValues(_ items: [String]) async throws(ClientError) -> [String: String] {
    var values = try parsePairs(items, flag: "--secret-env")
    for (name, value) in values where value.hasPrefix("@") {
        let data = try await readInput(String(value.dropFirst()), flag: "--secret-env \(name)")
        var text = String(decoding: data, as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        values[name] = text
    }
    return values
}
