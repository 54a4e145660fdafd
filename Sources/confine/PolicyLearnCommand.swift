import ArgumentParser
import Foundation
import Sandbox

extension PolicyCommand {
    /// `confine policy learn [--from default] [--out FILE] [--merge FILE] -- PROGRAM ARGS…`: a
    /// trial run whose filter lets every call through but records what the base policy would
    /// refuse, then the base policy with exactly that added, commented with counts.
    struct Learn: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a program once, recording what its policy would refuse, and write the policy it needs.",
            discussion: """
                The trial run is the --from policy's sandbox (namespaces, mounts, limits, no capabilities), except that \
                every system call its filter would refuse is let through and counted. The policy written is the --from \
                policy with exactly the system calls and socket families the program used added (each commented with its \
                count); what no policy key can grant (AF_PACKET sockets, namespaces, TIOCSTI) is listed as comments to \
                review, never granted. --merge adds an earlier learned file's grants and counts (repeated runs). \
                `confine policy check` accepts the file, and the program runs under it with nothing refused.

                Exit status: 0 when the policy was written (a warning says when the program itself failed), \
                78 when the policy or an option is invalid, 125 when the trial run could not be set up.
                """
        )

        @Option(name: .long, help: "The base policy: a name in the policies folder or a path.")
        var from: String = "default"

        @Option(name: .long, help: "Write the learned policy to FILE (default: standard output).")
        var out: String?

        @Option(name: .long, help: "An earlier learned policy file whose grants and counts are added.")
        var merge: String?

        @Option(name: .customLong("file"), help: ArgumentHelp("Deliver a host file read-only, at TARGET or /sandbox/BASENAME.", valueName: "HOST_PATH[:TARGET]"))
        var files: [String] = []

        @Option(name: .long, help: "A file whose bytes are the program's stdin.")
        var stdin: String?

        @Argument(parsing: .postTerminator, help: "The program and its arguments (after --).")
        var command: [String] = []

        func validate() throws {
            if command.isEmpty { throw ValidationError("give the program to run after --, e.g. confine policy learn -- /usr/bin/python3 -c 'print(1)'") }
        }

        func run() async throws {
            let base: Policy
            var previous: [(label: String, count: Int)] = []
            var previousNeeds: [TrialNote] = []
            var previousPolicy: Policy?
            do {
                base = try PolicyLoader.resolve(nameOrPath: from, directory: PolicyDirectory.locate())
                if let merge {
                    guard let text = try? String(contentsOfFile: merge, encoding: .utf8) else {
                        throw RunCommandError(description: "confine: --merge \(merge): cannot read the file")
                    }
                    previousPolicy = try PolicyLoader.load(file: merge)
                    previous = LearnedPolicy.recordedCounts(in: text)
                    previousNeeds = LearnedPolicy.recordedNeeds(in: text)
                }
            } catch {
                fail("\(error)", RunExitCode.badPolicy)
            }
            var input: [UInt8]?
            if let stdin {
                guard let data = FileManager.default.contents(atPath: stdin) else { fail("confine: --stdin \(stdin): cannot read the file", .badPolicy) }
                input = Array(data)
            }
            let delivered: [SandboxFile]
            do { delivered = try RunCommand.deliveredFiles(files) } catch { fail(error.description, .badPolicy) }

            var configuration = SandboxConfiguration()
            configuration.warmPoolSize = 0
            let sandbox: Sandbox
            do { sandbox = try Sandbox(configuration: configuration) } catch { fail("confine: \(error)", .setupFailed) }
            var request = RunRequest(policy: base, command: command, stdin: input, files: delivered)
            request.learning = true
            let result: RunResult
            do { result = try await sandbox.run(request) } catch { fail("confine: \(error)", .badPolicy) }
            if result.verdict == .setupFailed { fail("confine: the trial run could not start: \(result.summary)", .setupFailed) }
            FileHandle.standardError.write(Data(result.stdout))
            FileHandle.standardError.write(Data(result.stderr))
            note("trial run: \(result.summary)")
            if result.verdict != .exited || result.exitCode != 0 {
                note("warning: the program did not exit 0 — it may not have done all it does; review the policy and run again (--merge)")
            }

            let seen = (result.denied ?? []).map { ($0.syscall, $0.count) }
            var learned = LearnedPolicy(base: base, refusals: previous + seen)
            learned.needs = LearnedPolicy.merged(previousNeeds + result.trialNotes)
            if let previousPolicy {
                // Grants of the earlier file that its counts do not name (edited by hand) are kept too.
                for name in previousPolicy.seccomp.allow where !learned.policy.seccomp.allow.contains(name) {
                    learned.policy.seccomp.allow.append(name)
                }
                for family in previousPolicy.seccomp.socketFamilies where !learned.policy.seccomp.socketFamilies.contains(family) {
                    learned.policy.seccomp.socketFamilies.append(family)
                }
            }
            learned.policy.description = "Learned from \(base.name) for: \(command.joined(separator: " "))"
            var header = ["Confine policy learned by `confine policy learn --from \(from)` from a trial run of:",
                          "  \(command.joined(separator: " "))"]
            if let merge { header.append("merged with \(merge)") }
            header += ["Review it before use: `confine policy diff \(from) <this file>` shows what it allows beyond \(from).",
                       "The trial run had the base policy's network and filesystem: what it tried beyond them is listed",
                       "below as needs to review, never granted."]
            let text = learned.render(header: header) + "\n"
            if let out {
                do { try text.write(toFile: out, atomically: true, encoding: .utf8) } catch {
                    fail("confine: --out \(out): cannot write: \(error.localizedDescription)", .badPolicy)
                }
                note("wrote \(out)")
            } else {
                print(text, terminator: "")
            }
            let added = learned.grantedSyscalls + learned.grantedFamilies.map { "socket family \($0.rawValue)" }
            note(added.isEmpty ? "nothing added: \(base.name) refused nothing this program did" : "added: \(added.joined(separator: ", "))")
            if !learned.notGranted.isEmpty { note("not granted (review): \(learned.notGranted.map(\.label).joined(separator: ", "))") }
            for need in learned.needs { note("needs (review, not granted): \(need.kind.rawValue) \(need.detail) ×\(need.count)") }
        }

        private func note(_ text: String) {
            FileHandle.standardError.write(Data("confine: \(text)\n".utf8))
        }

        private func fail(_ message: String, _ code: RunExitCode) -> Never {
            FileHandle.standardError.write(Data("\(message)\n".utf8))
            Foundation.exit(code.rawValue)
        }
    }
}
