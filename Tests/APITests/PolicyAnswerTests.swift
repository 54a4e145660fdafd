@testable import API
import Foundation
import Sandbox
import Testing
import Wire
import Yams

/// A policy answered through `WirePolicy` is its YAML rendering read back as JSON — the sections
/// in the file's order and with the file's values — for every shipped policy and for one that
/// uses every form a section can take.
@Suite("Policy answers")
struct PolicyAnswerTests {
    /// The policy file's own view: its YAML rendering composed into JSON, limits as strings in
    /// human units (null where unlimited), with `name` first and `yaml` last — what the server
    /// answered before the wire type existed.
    static func renderedAsJSON(_ policy: Policy) throws -> Any {
        let yaml = policy.renderYAML()
        guard case .object(let rendered) = YAMLToJSON.convert(try #require(try Yams.compose(yaml: yaml))) else {
            Issue.record("the rendering of \(policy.name) is no mapping")
            return [:]
        }
        var members: [(String, JSON)] = [("name", .string(policy.name))]
        for (key, value) in rendered where key != "name" {
            if key == "filesystem", case .object(let sections) = value {
                // The device `null` (/dev/null) is a name, not JSON's null: plain YAML reads it as
                // null, which is what the untyped answer wrongly said.
                members.append((key, .object(sections.map { name, section in
                    guard name == "devices", case .array(let devices) = section else { return (name, section) }
                    return (name, .array(devices.map { $0 == .null ? .string("null") : $0 }))
                })))
                continue
            }
            guard key == "limits", case .object(let limits) = value else { members.append((key, value)); continue }
            members.append((key, .object(limits.map { name, limit in
                switch limit {
                case .string(let text): return (name, text == "none" ? .null : .string(text))
                case .number(let n): return (name, .string(n.rounded() == n ? String(Int64(n)) : String(n)))
                default: return (name, limit)
                }
            })))
        }
        members.append(("yaml", .string(yaml)))
        return try JSONSerialization.jsonObject(with: Data(JSON.object(members).encoded()))
    }

    static let everyForm = """
        description: "every form: 1.0"
        limits:
          cpu_quota: 2
          memory: 96MiB
          wall_time: 1.5s
        network: host
        output:
          on_overflow: kill
        hostname: box.example
        filesystem:
          read_only:
            - /usr
            - path: /no/such/path/here
              optional: true
            - source: /etc
              target: /host-etc
            - source: /bin
              target: /opt/bin
              optional: true
          tmpfs:
            - path: /tmp
              size: 1.5MiB
            - path: /scratch
              size: 100MB
          devices: [null, zero]
          workdir: /scratch
        seccomp:
          mode: deny_list
          action: kill
          deny: [ptrace]
          socket_families: [unix, inet]
        environment:
          set:
            LANG: C.UTF-8
            COUNT: "123"
            EMPTY: ""
          allow: [TZ]
        """

    static func policies() throws -> [Policy] {
        let shipped = try FileManager.default.contentsOfDirectory(atPath: "policies").filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(shipped.count >= 3, "the shipped policies were not found from \(FileManager.default.currentDirectoryPath)")
        var policies = try shipped.map { try PolicyLoader.load(file: "policies/" + $0) }
        policies.append(try PolicyLoader.load(yaml: everyForm, name: "every-form", file: "every-form.yaml"))
        var errnoPolicy = try PolicyLoader.load(yaml: "seccomp:\n  action: errno\n  errno: EACCES\nlimits:\n  cpu_quota: 0.25\n",
                                                name: "errno", file: "errno.yaml")
        errnoPolicy.description = ""
        policies.append(errnoPolicy)
        return policies
    }

    @Test("Every policy's answer is its YAML rendering as JSON, member for member")
    func answersAreTheRendering() throws {
        for policy in try Self.policies() {
            let answer = try JSONSerialization.jsonObject(with: Data(try WireJSON.encode(WirePolicy(policy))))
            let rendered = try Self.renderedAsJSON(policy)
            let answered = try #require(answer as? [String: Any]), expected = try #require(rendered as? [String: Any])
            #expect(Set(answered.keys) == Set(expected.keys), "\(policy.name): members \(answered.keys.sorted()) ≠ \(expected.keys.sorted())")
            for key in expected.keys.sorted() {
                #expect((answered[key] as? NSObject) == (expected[key] as? NSObject),
                        "\(policy.name).\(key): answered \(answered[key] ?? "nothing"), rendered \(expected[key] ?? "nothing")")
            }
        }
    }

    @Test("The long forms of a policy's sections come through typed")
    func longFormsAreTyped() throws {
        let policy = try PolicyLoader.load(yaml: Self.everyForm, name: "every-form", file: "every-form.yaml")
        let wire = WirePolicy(policy)
        #expect(wire.filesystem.read_only == [
            .path("/usr"),
            .bind(WirePolicyBindMount(path: "/no/such/path/here", optional: true)),
            .bind(WirePolicyBindMount(source: "/etc", target: "/host-etc")),
            .bind(WirePolicyBindMount(source: "/bin", target: "/opt/bin", optional: true)),
        ])
        #expect(wire.filesystem.tmpfs == [WirePolicyTmpfs(path: "/tmp", size: "1.5MiB"), WirePolicyTmpfs(path: "/scratch", size: "100MB")])
        #expect(wire.limits["cpu_quota"] == .some("2") && wire.limits["memory"] == .some("96MiB"))
        #expect(wire.seccomp.action == "kill" && wire.seccomp.errno == nil)
        #expect(wire.environment.set == ["LANG": "C.UTF-8", "COUNT": "123", "EMPTY": ""])
        #expect(wire.filesystem.devices == ["null", "zero"])
        #expect(wire.output.on_overflow == "kill" && wire.hostname == "box.example" && wire.network == "host")
        // Decoding what the server writes gives the same value back.
        #expect(try JSONDecoder().decode(WirePolicy.self, from: Data(try WireJSON.encode(wire))) == wire)
    }
}
