import ConfineTestSupport
import Foundation
import Testing

/// The client's plain words: `confine --version`, the id and summary of `exec run --follow`,
/// `--priority`, `job update --secret-env`, and a finished execution's cancel.
@Suite("confine client messages")
struct ClientMessagesTests {
    typealias Server = ClientVerbTests.Server

    @Test("confine --version prints the version alone")
    func version() throws {
        let o = try ClientVerbTests.run(["--version"])
        #expect(o.status == 0, "\(o)")
        #expect(o.stdout.range(of: #"^[0-9]+\.[0-9]+\.[0-9]+\n$"#, options: .regularExpression) != nil, "\(o)")
    }

    @Test("exec run --follow prints the id first and confine run's summary last, on stderr", .enabled(if: ClientVerbTests.hasServe))
    func followSummary() async throws {
        let server = try await Server()
        defer { server.stop() }
        #expect(try server.confine(["job", "create", "talk", "--type", "bash", "--script", "echo out; echo err >&2; exit 2"]).status == 0)
        let o = try server.confine(["exec", "run", "talk", "--follow"])
        #expect(o.status == 2 && o.stdout == "out\n", "\(o)")
        let lines = o.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(o)")
        #expect(lines.first?.hasPrefix("confine: execution ") == true && lines.first?.hasSuffix(" submitted (job talk)") == true, "\(o)")
        #expect(lines.contains("err"), "\(o)")
        #expect(lines.last?.hasPrefix("confine: exited 2 — wall ") == true, "\(o)")
    }

    @Test("exec run --priority reaches the execution; out of range is a usage error", .enabled(if: ClientVerbTests.hasServe))
    func priority() async throws {
        let server = try await Server()
        defer { server.stop() }
        #expect(try server.confine(["job", "create", "p", "--type", "bash", "--script", "true"]).status == 0)
        let o = try server.confine(["exec", "run", "p", "--priority", "7", "--wait", "--json"])
        #expect(o.status == 0, "\(o)")
        #expect(try CLITests.json(o.stdout)["priority"] as? Int == 7, "\(o)")
        // Without --wait: the id on stderr too, the earlier stdout line unchanged.
        let queued = try server.confine(["exec", "run", "p"])
        let id = try ClientVerbTests.executionID(queued)
        #expect(queued.stderr == "confine: execution \(id) submitted (job p)\n", "\(queued)")
        let bad = try server.confine(["exec", "run", "p", "--priority", "101"])
        #expect(bad.status == 64 && bad.stderr.contains("--priority must be from -100 to 100"), "\(bad)")
    }

    @Test("job update --secret-env sets a secret and keeps the others; --remove-secret-env removes one", .enabled(if: ClientVerbTests.hasServe))
    func secretEnv() async throws {
        let policies = FileManager.default.temporaryDirectory.appendingPathComponent("confine-secret-policies-\(UUID().uuidString)")
        try? FileManager.default.removeItem(at: policies)
        try FileManager.default.createDirectory(at: policies, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: policies) }
        let base = try String(contentsOfFile: CLITests.repoRoot + "/policies/default.yaml", encoding: .utf8)
        try base.write(to: policies.appendingPathComponent("default.yaml"), atomically: true, encoding: .utf8)
        try base.replacingOccurrences(of: "allow: [TZ]", with: "allow: [TZ, API_*]")
            .write(to: policies.appendingPathComponent("vault.yaml"), atomically: true, encoding: .utf8)
        let server = try await Server(policies: policies.path)
        defer { server.stop() }
        let script = "echo \"a=${API_A:-} b=${API_B:-}\""
        let made = try server.confine(["job", "create", "s", "--type", "bash", "--script", script, "--policy", "vault", "--secret-env", "API_A=one"])
        #expect(made.status == 0, "\(made)")
        let set = try server.confine(["job", "update", "s", "--secret-env", "API_B=two"])
        #expect(set.status == 0, "\(set)")
        #expect(try server.confine(["exec", "run", "s", "--wait"]).stdout == "a=one b=two\n")
        let removed = try server.confine(["job", "update", "s", "--remove-secret-env", "API_A"])
        #expect(removed.status == 0, "\(removed)")
        #expect(try server.confine(["exec", "run", "s", "--wait"]).stdout == "a= b=two\n")
        let both = try server.confine(["job", "update", "s", "--secret-env", "API_A=x", "--remove-secret-env", "API_A"])
        #expect(both.status == 64, "\(both)")
    }
}
