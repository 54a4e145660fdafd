import ArgumentParser
import Wire

/// The `confine` command: one binary, many verbs.
@main
struct Confine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "confine",
        abstract: "Run scripts in a tight Linux sandbox.",
        discussion: """
            Policies live in ./policies (or $CONFINE_POLICIES): YAML files that say what a \
            sandboxed program may see and use. Check one with `confine policy check FILE`.
            """,
        version: ConfineVersion.current,
        subcommands: [RunCommand.self, PolicyCommand.self, ServeCommand.self, JobCommand.self, ExecCommand.self, TokenCommand.self, DoctorCommand.self, BackupCommand.self]
    )
}
