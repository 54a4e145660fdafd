import ArgumentParser
import Foundation
import Sandbox

/// `confine policy …`: work with policy files.
struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Check, learn and compare policy files.",
        subcommands: [Check.self, Learn.self, Diff.self]
    )

    /// `confine policy check FILE...`: validate and print the effective policy.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate policy files and print each effective policy.",
            discussion: "Exits 0 when every file is valid, 1 otherwise; each problem names the file, the key path and what is expected."
        )

        @Argument(help: "Policy files (or names of policies in the policies folder).")
        var files: [String]

        func run() throws {
            var failed = 0
            for (i, file) in files.enumerated() {
                do {
                    let policy = try PolicyLoader.resolve(nameOrPath: file, directory: PolicyDirectory.locate())
                    if i > 0 { print("---") }
                    print("# \(file): valid — effective policy \"\(policy.name)\"")
                    print(policy.renderYAML(), terminator: "")
                    print(policy.seccomp.renderEffectiveComment(), terminator: "")
                } catch {
                    failed += 1
                    FileHandle.standardError.write(Data("\(error)\n".utf8))
                }
            }
            if failed > 0 {
                FileHandle.standardError.write(Data("confine: \(failed) of \(files.count) policy file(s) invalid\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}
