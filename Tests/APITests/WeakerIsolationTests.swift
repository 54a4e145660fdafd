import API
import Foundation
import Sandbox
import Testing

/// A host that lacks a piece of isolation (simulated with an injected probe): `confine serve`
/// refuses to start naming it, unless `allow_weaker` allows running without it; then the
/// sandbox really runs without it, and `/ready` and every execution say so.
@Suite("Weaker isolation")
struct WeakerIsolationTests {
    static func probe(_ missing: [IsolationFeature: String]) -> HostFeatureProbe { HostFeatureProbe { _ in missing } }

    @Test("A missing piece stops the start, named with its reason and the way out, unless allow_weaker allows it")
    func startDecision() throws {
        var c = ServerConfiguration()
        let refusal = #expect(throws: IsolationRefusal.self) {
            _ = try c.adaptIsolation(to: Self.probe([.cgroups: "cgroup: find the memory controller: ENOENT"]))
        }
        let words = refusal?.description ?? ""
        #expect(words.contains("cgroups (cgroup: find the memory controller: ENOENT)"), "\(words)")
        #expect(words.contains("allow_weaker: [cgroups]") && words.contains("CONFINE_ALLOW_WEAKER=cgroups"), "\(words)")
        #expect(words.contains("no memory, process or CPU-quota limits") && words.contains("confine doctor"), "\(words)")
        #expect(c.sandbox.cgroups == .required && c.sandbox.seccomp == .required, "a refusal changes nothing")

        // Allowed for one piece, the other still stops the start.
        c.allowWeaker = [.cgroups]
        let both = #expect(throws: IsolationRefusal.self) {
            _ = try c.adaptIsolation(to: Self.probe([.cgroups: "none", .seccomp: "no Seccomp: line"]))
        }
        #expect(both?.missing.keys.sorted() == [.seccomp], "\(String(describing: both))")

        // User namespaces cannot be done without.
        let userns = #expect(throws: IsolationRefusal.self) {
            _ = try c.adaptIsolation(to: Self.probe([.userNamespaces: "unshare(CLONE_NEWUSER) fails: EPERM"]))
        }
        #expect(userns?.description.contains("cannot run without user_namespaces") == true, "\(String(describing: userns))")

        // Allowed: the sandbox is set to run without exactly what is missing.
        c.allowWeaker = [.cgroups, .seccomp]
        #expect(try c.adaptIsolation(to: Self.probe([.seccomp: "no Seccomp: line"])) == [.seccomp])
        #expect(c.sandbox.seccomp == .disabled && c.sandbox.cgroups == .required)
        var full = ServerConfiguration()
        full.allowWeaker = [.cgroups, .seccomp]
        #expect(try full.adaptIsolation(to: Self.probe([:])) == [], "allowed but present: full isolation")
        #expect(full.sandbox.weakenedIsolation == [])
    }

    @Test("allow_weaker from the file (a list) and CONFINE_ALLOW_WEAKER (commas); unknown names and user_namespaces refused")
    func configuration() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("confine-weaker-\(UUID().uuidString).yaml").path
        try "allow_weaker: [cgroups, seccomp]\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try ServerConfiguration.load(file: path, environment: [:]).allowWeaker == [.cgroups, .seccomp])
        #expect(try ServerConfiguration.load(file: nil, environment: ["CONFINE_ALLOW_WEAKER": "seccomp"]).allowWeaker == [.seccomp])
        #expect(try ServerConfiguration.load(file: nil, environment: [:]).allowWeaker == [])
        let typo = #expect(throws: ConfigurationError.self) {
            _ = try ServerConfiguration.load(file: nil, environment: ["CONFINE_ALLOW_WEAKER": "cgroup"])
        }
        #expect(typo?.key == "CONFINE_ALLOW_WEAKER" && typo?.message.contains("did you mean \"cgroups\"") == true,
                "\(String(describing: typo))")
        let userns = #expect(throws: ConfigurationError.self) {
            _ = try ServerConfiguration.load(file: nil, environment: ["CONFINE_ALLOW_WEAKER": "user_namespaces"])
        }
        #expect(userns?.message.contains("cannot be allowed missing") == true, "\(String(describing: userns))")
    }

    @Test("Allowed weaker: runs really go without cgroups and seccomp, and /ready and every execution say so")
    func weakerRuns() async throws {
        let script = "grep Seccomp: /proc/self/status; python3 -c 'b = bytearray(300 << 20); print(len(b) >> 20)'"
        try await LiveServer.with({ c in
            c.allowWeaker = [.cgroups, .seccomp]
            _ = try? c.adaptIsolation(to: Self.probe([.cgroups: "simulated", .seccomp: "simulated"]))
        }) { s in
            #expect(s.engine.sandbox.cgroups == nil && s.engine.weakerIsolation == ["cgroups", "seccomp"])
            let ready = try await s.get("/ready")
            #expect(ready.status == 200, "\(ready)")
            #expect(ready.object["weaker_isolation"] as? [String] == ["cgroups", "seccomp"], "\(ready)")
            let checks = ready.object["checks"] as? [String: String] ?? [:]
            #expect(checks["isolation"]?.contains("without cgroups") == true && checks["isolation"]?.contains("without seccomp") == true,
                    "\(checks)")
            #expect(checks["cgroups"]?.hasPrefix("disabled (allow_weaker)") == true, "\(checks)")

            let job = try await s.job("weaker", "bash", script)
            let id = try #require(try await s.post("/executions/\(job)/run").object["execution_id"] as? Int)
            let submitted = try await s.get("/executions/\(id)").object
            #expect(submitted["weaker_isolation"] as? [String] == ["cgroups", "seccomp"], "recorded from submission: \(submitted)")
            let e = try await s.waitFinal(id)
            #expect(e["status"] as? String == "SUCCESS", "\(e)")
            // No filter (mode 0), and no memory limit: 300 MiB under a 256 MiB policy.
            #expect(e["stdout"] as? String == "Seccomp:\t0\n300\n", "\(e)")
            #expect(e["weaker_isolation"] as? [String] == ["cgroups", "seccomp"], "\(e)")
            let listed = try await s.get("/executions?job_id=\(job)").object["executions"] as? [[String: Any]] ?? []
            #expect(listed.first?["weaker_isolation"] as? [String] == ["cgroups", "seccomp"])
        }
        // The same script with full isolation: filtered (mode 2), and the memory limit holds.
        try await LiveServer.with { s in
            let ready = try await s.get("/ready")
            #expect(ready.object["weaker_isolation"] as? [String] == [] && (ready.object["checks"] as? [String: String])?["isolation"] == "ok")
            let job = try await s.job("full", "bash", script)
            let e = try await s.post("/executions/\(job)/run?wait=true").object
            #expect(e["verdict"] as? String == "memory_limit" && (e["stdout"] as? String)?.hasPrefix("Seccomp:\t2\n") == true, "\(e)")
            #expect(e["weaker_isolation"] as? [String] == [])
        }
    }
}
