import Testing
@testable import Sandbox

@Suite("PolicyRendering")
struct PolicyRenderingTests {
    @Test("shipped policies render and load back equal", arguments: PolicyFixtures.shippedNames)
    func shippedPolicyRoundTrips(name: String) throws {
        let policy = try PolicyLoader.load(file: "\(PolicyFixtures.policiesDirectory)/\(name).yaml")
        let yaml = policy.renderYAML()
        let again = try PolicyLoader.load(yaml: yaml, name: name, file: "rendered.yaml")
        #expect(again == policy, "rendered:\n\(yaml)")
    }

    @Test func unusualValuesRoundTrip() throws {
        var policy = Policy(name: "odd")
        policy.description = "Quotes \" and \\ backslash\nsecond line: yes, # not a comment\t tab"
        policy.limits.cpuQuota = nil
        policy.limits.memoryBytes = 1_610_612_736
        policy.limits.wallTimeMs = 1_234
        policy.limits.stdoutBytes = 1_000_003
        policy.limits.fileSizeBytes = 0
        policy.overridable = [.memory, .wallTime]
        policy.network = .host
        policy.outputOverflow = .kill
        policy.hostname = "box-1.example"
        policy.filesystem.readOnly = [BindMount(source: "/usr"), BindMount(source: "/opt/a b", target: "/x", optional: true),
                                      BindMount(source: "/lib64", optional: true), BindMount(source: "/srv/data", target: "/data")]
        policy.filesystem.tmpfs = [TmpfsMount(path: "/tmp", sizeBytes: 1536), TmpfsMount(path: "/scratch", sizeBytes: 100_000_000)]
        policy.filesystem.devices = []
        policy.filesystem.workdir = "/scratch/w"
        policy.seccomp = SeccompPolicy(action: .errno(38), deny: ["personality"], allow: ["ptrace"])
        policy.environment = EnvironmentPolicy(set: ["YES": "yes", "NUM": "1.0", "EMPTY": "", "PATH": "/bin:/usr/bin", "STAR": "*"],
                                               allow: ["*", "APP_*"])
        let yaml = policy.renderYAML()
        let again = try PolicyLoader.load(yaml: yaml, name: "odd", file: "rendered.yaml", hostPathExists: { _ in true })
        #expect(again == policy, "rendered:\n\(yaml)")
        #expect(yaml.contains("errno: ENOSYS"))
        #expect(yaml.contains("cpu_quota: none"))
        #expect(yaml.contains("memory: 1.5GiB"))
        #expect(yaml.contains("size: 100MB"))
    }

    @Test func killActionAndEmptySectionsRoundTrip() throws {
        var policy = Policy(name: "bare")
        policy.seccomp.action = .kill
        policy.environment = EnvironmentPolicy(set: [:])
        policy.filesystem.tmpfs = [TmpfsMount(path: "/tmp", sizeBytes: 1 << 20)]
        let yaml = policy.renderYAML()
        #expect(!yaml.contains("errno:"))
        #expect(try PolicyLoader.load(yaml: yaml, name: "bare", file: "r.yaml") == policy)
    }

    @Test func renderingListsEveryKeyOfTheSchema() throws {
        let yaml = Policy(name: "x").renderYAML()
        for key in PolicySchema.top + PolicySchema.limits + PolicySchema.filesystem + PolicySchema.seccomp + PolicySchema.environment + PolicySchema.output {
            #expect(yaml.contains("\(key):"), "\(key) missing")
        }
    }
}
