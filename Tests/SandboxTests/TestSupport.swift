import Foundation
import Glibc
import Sandbox
import Testing

/// Shared fixtures of the sandbox tests: the repository's policies, one `Sandbox`, and
/// helpers to run a shell script under a policy.
enum TestSupport {
    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static var policiesDirectory: String { repoRoot + "/policies" }

    static func policy(_ name: String = "default") throws -> Policy {
        try PolicyLoader.load(file: "\(policiesDirectory)/\(name).yaml")
    }

    /// Why sandboxed runs cannot happen on this host, or nil when they can.
    static let unavailableReason: String? = {
        if geteuid() != 0 { return "sandbox tests need root (namespaces and cgroups); running as uid \(geteuid())" }
        if let max = try? String(contentsOfFile: "/proc/sys/user/max_user_namespaces", encoding: .utf8),
           Int(max.trimmingCharacters(in: .whitespacesAndNewlines)) == 0 {
            return "user namespaces are disabled on this host (user.max_user_namespaces = 0)"
        }
        do { _ = try Sandbox() } catch { return "no usable cgroup hierarchy: \(error)" }
        return nil
    }()

    static var canSandbox: Bool {
        if let reason = unavailableReason {
            print("SKIP sandbox containment tests: \(reason)")
            return false
        }
        return true
    }

    static let sandbox: Sandbox = try! Sandbox()

    /// A Sandbox of the test's own, with `warmPoolSize` warm sandboxes per image; the test shuts
    /// it down.
    static func sandbox(warmPoolSize: Int) throws -> Sandbox {
        var configuration = SandboxConfiguration()
        configuration.warmPoolSize = warmPoolSize
        return try Sandbox(configuration: configuration)
    }

    /// Runs `script` with /bin/bash under `policy` (default.yaml when nil), after `adjust`.
    static func bash(_ script: String, policy: Policy? = nil, stdin: [UInt8]? = nil,
                     adjust: (inout Policy) -> Void = { _ in }) async throws -> RunResult {
        var p = try policy ?? Self.policy()
        adjust(&p)
        return try await sandbox.run(RunRequest(policy: p, command: ["/bin/bash", "-c", script], stdin: stdin))
    }

    /// Runs a Python program delivered as a read-only file.
    static func python(_ source: String, policy: Policy? = nil,
                       adjust: (inout Policy) -> Void = { _ in }) async throws -> RunResult {
        var p = try policy ?? Self.policy()
        adjust(&p)
        let file = SandboxFile(path: "/sandbox/main.py", contents: Array(source.utf8))
        return try await sandbox.run(RunRequest(policy: p, command: ["/usr/bin/python3", "/sandbox/main.py"], files: [file]))
    }

    /// Host processes whose command line contains `marker`.
    static func hostProcesses(containing marker: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let cmdline = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return cmdline.contains(marker)
        }
    }
}

extension RunResult {
    var out: String { String(decoding: stdout, as: UTF8.self) }
    var err: String { String(decoding: stderr, as: UTF8.self) }
}
