import Foundation
import Sandbox

/// Where the CLI finds policies: $CONFINE_POLICIES, else ./policies, else the `policies`
/// folder of the checkout the binary was built in.
enum PolicyDirectory {
    static func locate() -> String {
        if let env = ProcessInfo.processInfo.environment["CONFINE_POLICIES"], !env.isEmpty { return env }
        if FileManager.default.fileExists(atPath: "policies") { return "policies" }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = url.appendingPathComponent("policies").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            url.deleteLastPathComponent()
        }
        return "policies"
    }
}
