import ArgumentParser
import Foundation
import Sandbox

extension PolicyCommand {
    /// `confine policy diff A B`: what B allows that A does not, and the other way.
    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare two policies: what each allows that the other does not.",
            discussion: "Limit by limit, mount by mount, system call by system call. Exits 0 when neither allows more than the other, 1 when they differ, 78 when a policy is invalid."
        )

        @Argument(help: "The first policy (a name in the policies folder or a path).")
        var a: String

        @Argument(help: "The second policy.")
        var b: String

        func run() throws {
            let first: Policy, second: Policy
            do {
                first = try PolicyLoader.resolve(nameOrPath: a, directory: PolicyDirectory.locate())
                second = try PolicyLoader.resolve(nameOrPath: b, directory: PolicyDirectory.locate())
            } catch {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                throw ExitCode(RunExitCode.badPolicy.rawValue)
            }
            let more = second.allowances(beyond: first), less = first.allowances(beyond: second)
            print("\(b) allows what \(a) does not (\(more.count)):")
            for item in more { print("  + \(item)") }
            if more.isEmpty { print("  (nothing)") }
            print("\(a) allows what \(b) does not (\(less.count)):")
            for item in less { print("  - \(item)") }
            if less.isEmpty { print("  (nothing)") }
            if !more.isEmpty || !less.isEmpty { throw ExitCode(1) }
        }
    }
}
