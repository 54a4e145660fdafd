import Foundation
import Testing
@testable import Sandbox

@Suite("PolicyLoader")
struct PolicyLoaderTests {
    typealias F = PolicyFixtures

    /// Expects exactly one problem, at `keyPath`, whose message contains every fragment.
    func expectOnly(_ yaml: String, at keyPath: String, _ fragments: String...,
                    exists: @escaping (String) -> Bool = { _ in true },
                    sourceLocation: SourceLocation = #_sourceLocation) {
        let problems = F.problems(yaml, exists: exists)
        #expect(problems.count == 1, "problems: \(problems)", sourceLocation: sourceLocation)
        guard let problem = problems.first else { return }
        #expect(problem.keyPath == keyPath, "\(problem)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(problem.message.contains(fragment), "\(problem) lacks \(fragment)", sourceLocation: sourceLocation)
        }
    }

    // MARK: Shipped policies

    @Test("every shipped policy loads", arguments: PolicyFixtures.shippedNames)
    func shippedPolicyLoads(name: String) throws {
        let policy = try PolicyLoader.load(file: "\(F.policiesDirectory)/\(name).yaml")
        #expect(policy.name == name)
        #expect(!policy.description.isEmpty)
        #expect(policy.filesystem.readOnly.contains { $0.source == "/usr" && !$0.optional })
        #expect(!policy.filesystem.readOnly.contains { $0.source.hasPrefix("/etc/passwd") || $0.source.hasPrefix("/etc/shadow") })
        #expect(policy.filesystem.tmpfs.map(\.path) == ["/tmp"])
        #expect(policy.environment.set["PATH"] == "/usr/local/bin:/usr/bin:/bin")
        let text = try String(contentsOfFile: "\(F.policiesDirectory)/\(name).yaml", encoding: .utf8)
        #expect(text.hasPrefix("# Confine policy \"\(name)\""))
    }

    @Test func defaultPolicyHasTheDocumentedValues() throws {
        let p = try PolicyLoader.load(file: "\(F.policiesDirectory)/default.yaml")
        #expect(p.limits == Limits())  // the file spells out the built-in defaults
        #expect(p.network == .none)
        #expect(p.outputOverflow == .truncate)
        #expect(p.overridable == [.wallTime, .cpuTime, .memory, .processes, .stdout, .stderr])
        #expect(p.filesystem.tmpfs == [TmpfsMount(path: "/tmp", sizeBytes: 64 << 20)])
        #expect(Set(p.filesystem.devices) == Set(DeviceNode.allCases))
        #expect(p.filesystem.readOnly.first { $0.source == "/lib64" }?.optional == true)
        #expect(p.filesystem.readOnly.first { $0.source == "/etc/ld.so.cache" }?.optional == false)
        #expect(p.seccomp == SeccompPolicy(action: .errno(1)))
        #expect(p.environment.set == ["PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"])
        #expect(p.environment.allows("TZ") && !p.environment.allows("LD_PRELOAD"))
    }

    @Test func strictPolicyIsTighterThanDefault() throws {
        let d = try PolicyLoader.load(file: "\(F.policiesDirectory)/default.yaml")
        let s = try PolicyLoader.load(file: "\(F.policiesDirectory)/strict.yaml")
        for limit in LimitName.allCases {
            #expect(!s.limits[limit].isLooser(than: d.limits[limit]), "strict \(limit.rawValue) is looser")
        }
        #expect(s.limits.memoryBytes == 128 << 20 && s.limits.processes == 16 && s.limits.stdoutBytes == 256 << 10)
        #expect(s.seccomp.action == .kill)
        #expect(s.seccomp.deny.contains("personality"))
        #expect(s.seccomp.allow.isEmpty)
        #expect(s.overridable == [.wallTime, .cpuTime, .memory])
        #expect(s.outputOverflow == .kill)
        #expect(s.network == .none)
    }

    @Test func networkedPolicyReachesTheHost() throws {
        let p = try PolicyLoader.load(file: "\(F.policiesDirectory)/networked.yaml")
        #expect(p.network == .host)
        for path in ["/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/ssl", "/etc/ca-certificates", "/usr/share/ca-certificates"] {
            #expect(p.filesystem.readOnly.first { $0.source == path }?.optional == true, "\(path)")
        }
    }

    // MARK: Directory and resolution

    @Test func policySetLoadsTheDirectory() throws {
        let set = try PolicySet.load(directory: F.policiesDirectory)
        #expect(set.names == F.shippedNames)
        #expect(set["strict"]?.seccomp.action == .kill)
        #expect(throws: PolicyError.self) { try set.policy(named: "nope") }
    }

    @Test func policySetReportsEveryBrokenFile() throws {
        let dir = try TemporaryDirectory()
        try "limits: {memory: lots}\n".write(toFile: dir.path + "/a.yaml", atomically: true, encoding: .utf8)
        try "network: hots\n".write(toFile: dir.path + "/b.yml", atomically: true, encoding: .utf8)
        try "description: fine\n".write(toFile: dir.path + "/c.yaml", atomically: true, encoding: .utf8)
        try "not a policy".write(toFile: dir.path + "/notes.txt", atomically: true, encoding: .utf8)
        do {
            _ = try PolicySet.load(directory: dir.path)
            Issue.record("expected an error")
        } catch {
            guard case .several(let errors) = error else { Issue.record("got \(error)"); return }
            #expect(errors.count == 2)
            #expect(error.description.contains("a.yaml: limits.memory: expected a size"))
            #expect(error.description.contains("b.yml: network: expected none or host, got \"hots\" (did you mean \"host\"?)"))
        }
        try FileManager.default.removeItem(atPath: dir.path + "/a.yaml")
        try FileManager.default.removeItem(atPath: dir.path + "/b.yml")
        #expect(try PolicySet.load(directory: dir.path).names == ["c"])
    }

    @Test func resolveByNameAndByPath() throws {
        let byName = try PolicyLoader.resolve(nameOrPath: "strict", directory: F.policiesDirectory)
        let byPath = try PolicyLoader.resolve(nameOrPath: "\(F.policiesDirectory)/strict.yaml", directory: "/nonexistent")
        #expect(byName == byPath)
        #expect(byName.name == "strict")
        #expect(PolicyLoader.isPath("x.yml") && PolicyLoader.isPath("./x") && !PolicyLoader.isPath("default"))
    }

    @Test func resolveUnknownNameListsTheAvailableOnes() {
        do {
            _ = try PolicyLoader.resolve(nameOrPath: "defualt", directory: F.policiesDirectory)
            Issue.record("expected an error")
        } catch {
            #expect(error == .unknownPolicy(name: "defualt", directory: F.policiesDirectory, available: F.shippedNames))
            #expect(error.description.contains("did you mean \"default\"?"))
            #expect(error.description.hasSuffix("available: default, networked, strict"))
        }
    }

    @Test func unreadableFileIsReported() {
        #expect(throws: PolicyError.unreadable(file: "/nonexistent/p.yaml", reason: "no such file")) {
            try PolicyLoader.load(file: "/nonexistent/p.yaml")
        }
    }

    @Test func defaultDirectoryIsPoliciesOrTheEnvironment() {
        let env = ProcessInfo.processInfo.environment["CONFINE_POLICIES"]
        #expect(PolicyLoader.defaultDirectory == ((env?.isEmpty ?? true) ? "./policies" : env!))
    }

    // MARK: Defaults

    @Test func emptyFileGivesTheBuiltInDefaults() throws {
        let p = try F.load("", name: "empty")
        #expect(p == Policy(name: "empty"))
        let q = try F.load("limits:\nfilesystem:\nseccomp:\n", name: "empty")
        #expect(q == Policy(name: "empty"))
    }

    @Test func omittedKeysKeepTheirDefaults() throws {
        let p = try F.load("limits:\n  memory: 512MiB\n")
        var expected = Limits()
        expected.memoryBytes = 512 << 20
        #expect(p.limits == expected)
    }

    // MARK: One message per class of mistake

    @Test func descriptionHasFileKeyPathAndExpectation() {
        let error = F.error("limits:\n  memory: lots\n", file: "policies/default.yaml")
        #expect(error?.description == "policies/default.yaml: limits.memory: expected a size such as 256MiB or 1.5GiB, got \"lots\"")
        #expect(error?.problems.first?.line == 2)
    }

    @Test func unknownTopLevelKeySuggestsTheClosest() {
        expectOnly("deny_netwrok: true\n", at: "deny_netwrok", "unknown key", "did you mean \"network\"?")
        expectOnly("netwrk: none\n", at: "netwrk", "did you mean \"network\"?")
    }

    @Test func unknownNestedKeySuggestsTheClosest() {
        expectOnly("limits:\n  memroy: 1GiB\n", at: "limits.memroy", "unknown key (did you mean \"memory\"?)")
        expectOnly("filesystem:\n  read_olny: []\n", at: "filesystem.read_olny", "did you mean \"read_only\"?")
    }

    @Test func keyAtTheWrongLevelPointsToItsSection() {
        expectOnly("memory: 1GiB\n", at: "memory", "did you mean \"limits.memory\"?")
    }

    @Test func unknownKeyWithoutNeighbourListsTheKnownOnes() {
        expectOnly("output:\n  colour: red\n", at: "output.colour", "unknown key; expected one of: on_overflow")
    }

    @Test func wrongTypesAreNamed() {
        expectOnly("limits: 5\n", at: "limits", "expected a mapping", "got \"5\"")
        expectOnly("limits:\n  processes: [1]\n", at: "limits.processes", "expected a whole number, got a list")
        expectOnly("limits:\n  processes: lots\n", at: "limits.processes", "expected a whole number, got \"lots\"")
        expectOnly("filesystem:\n  read_only: /usr\n", at: "filesystem.read_only", "expected a list", "got \"/usr\"")
        expectOnly("filesystem:\n  read_only:\n    - path: /usr\n      optional: maybe\n",
                   at: "filesystem.read_only[0].optional", "expected true or false, got \"maybe\"")
        expectOnly("network: {mode: host}\n", at: "network", "expected none or host, got a mapping")
        expectOnly("hostname:\n", at: "hostname", "got nothing")
        expectOnly("- a\n- b\n", at: "", "expected a mapping", "got a list")
    }

    @Test func badUnitsAreExplained() {
        expectOnly("limits:\n  memory: 64k\n", at: "limits.memory", "ambiguous unit \"k\"", "64KiB", "64kB")
        expectOnly("limits:\n  wall_time: 10\n", at: "limits.wall_time", "needs a unit", "10s", "10ms")
        expectOnly("limits:\n  cpu_time: 3 parsecs\n", at: "limits.cpu_time", "unknown unit \"parsecs\"")
        expectOnly("limits:\n  stdout: 1.5\n", at: "limits.stdout", "whole number", "add a unit")
    }

    @Test func negativeAndZeroAreRefused() {
        expectOnly("limits:\n  memory: -1MiB\n", at: "limits.memory", "cannot be negative")
        expectOnly("limits:\n  wall_time: 0s\n", at: "limits.wall_time", "must be at least 1ms, got 0ms")
        expectOnly("limits:\n  wall_time: 25h\n", at: "limits.wall_time", "must be at most 24h")
        expectOnly("limits:\n  processes: 0\n", at: "limits.processes", "must be at least 1, got 0")
        expectOnly("limits:\n  processes: -3\n", at: "limits.processes", "must not be negative")
        expectOnly("limits:\n  memory: 512KiB\n", at: "limits.memory", "must be at least 1MiB")
        expectOnly("limits:\n  cpu_weight: 10001\n", at: "limits.cpu_weight", "must be at most 10000")
        expectOnly("limits:\n  cpu_quota: 0\n", at: "limits.cpu_quota", "must be at least 0.01 cores")
        expectOnly("limits:\n  cpu_quota: .nan\n", at: "limits.cpu_quota", "expected a number of CPU cores")
        expectOnly("limits:\n  memory: 99999999999PiB\n", at: "limits.memory", "too large")
        expectOnly("filesystem:\n  tmpfs:\n    - path: /tmp\n      size: 0\n", at: "filesystem.tmpfs[0].size", "must be greater than 0")
    }

    @Test func cpuQuotaNoneOrNullRemovesTheQuota() throws {
        #expect(try F.load("limits:\n  cpu_quota: none\n").limits.cpuQuota == nil)
        #expect(try F.load("limits:\n  cpu_quota: ~\n").limits.cpuQuota == nil)
        #expect(try F.load("limits:\n  cpu_quota: 2\n").limits.cpuQuota == 2.0)
        #expect(try F.load("limits:\n  cpu_quota: 0.25\n").limits.cpuQuota == 0.25)
    }

    @Test func missingHostPathIsRefusedAndSuggestsOptional() {
        let yaml = "filesystem:\n  read_only:\n    - /usr\n    - /nonexistent-confine-test/lib\n    - source: /nonexistent-confine-test/x\n      target: /x\n"
        let problems = F.problems(yaml, exists: FileManager.default.fileExists(atPath:))
        #expect(problems.map(\.keyPath) == ["filesystem.read_only[1]", "filesystem.read_only[2].source"])
        #expect(problems.allSatisfy { $0.message.contains("does not exist on this host") && $0.message.contains("optional: true") })
    }

    @Test func optionalMissingHostPathIsAccepted() throws {
        let yaml = "filesystem:\n  read_only:\n    - path: /nonexistent-confine-test/lib\n      optional: true\n"
        let p = try PolicyLoader.load(yaml: yaml, name: "t", file: "t.yaml")  // the real host
        #expect(p.filesystem.readOnly == [BindMount(source: "/nonexistent-confine-test/lib", optional: true)])
    }

    @Test func duplicateTargetsAreRefused() {
        expectOnly("filesystem:\n  read_only:\n    - /usr\n    - source: /opt\n      target: /usr/\n",
                   at: "filesystem.read_only[1].target", "\"/usr\" is already a mount target (filesystem.read_only[0])")
        expectOnly("filesystem:\n  read_only: [/tmp]\n", at: "filesystem.tmpfs[0]", "already mounted by filesystem.read_only[0]")
        expectOnly("filesystem:\n  tmpfs:\n    - {path: /tmp, size: 1MiB}\n    - {path: /tmp, size: 2MiB}\n",
                   at: "filesystem.tmpfs[1].path", "already a mount target (filesystem.tmpfs[0])")
    }

    @Test func relativePathsAreRefused() {
        expectOnly("filesystem:\n  read_only: [usr]\n", at: "filesystem.read_only[0]", "expected an absolute path (starting with /), got \"usr\"")
        expectOnly("filesystem:\n  workdir: tmp\n", at: "filesystem.workdir", "expected an absolute path")
        expectOnly("filesystem:\n  read_only:\n    - source: /usr\n      target: x\n", at: "filesystem.read_only[0].target", "absolute path")
    }

    @Test func dotDotIsRefused() {
        expectOnly("filesystem:\n  read_only: [/usr/../etc]\n", at: "filesystem.read_only[0]", "\"..\" is not allowed", "/usr/../etc")
        expectOnly("filesystem:\n  tmpfs:\n    - {path: /tmp/.., size: 1MiB}\n", at: "filesystem.tmpfs[0].path", "\"..\" is not allowed")
    }

    @Test func pathsAreNormalized() throws {
        let p = try F.load("filesystem:\n  read_only: [//usr/./lib/]\n  workdir: /tmp/./w/\n")
        #expect(p.filesystem.readOnly == [BindMount(source: "/usr/lib")])
        #expect(p.filesystem.workdir == "/tmp/w")
    }

    @Test func reservedTargetsAreRefused() {
        expectOnly("filesystem:\n  read_only: [/]\n", at: "filesystem.read_only[0]", "cannot mount over /")
        expectOnly("filesystem:\n  read_only: [/proc/self]\n", at: "filesystem.read_only[0]", "/proc, which the sandbox mounts itself")
        expectOnly("filesystem:\n  read_only:\n    - source: /etc\n      target: /dev/etc\n",
                   at: "filesystem.read_only[0].target", "filesystem.devices")
        expectOnly("filesystem:\n  tmpfs:\n    - {path: /dev, size: 1MiB}\n  workdir: /dev\n", at: "filesystem.tmpfs[0].path", "/dev")
    }

    @Test func readOnlyEntryShapes() throws {
        let p = try F.load("""
            filesystem:
              read_only:
                - /usr
                - path: /lib64
                  optional: true
                - source: /opt/x
                  target: /x
            """)
        #expect(p.filesystem.readOnly == [BindMount(source: "/usr"), BindMount(source: "/lib64", optional: true),
                                          BindMount(source: "/opt/x", target: "/x")])
        expectOnly("filesystem:\n  read_only:\n    - {path: /a, source: /b}\n", at: "filesystem.read_only[0]", "not both")
        expectOnly("filesystem:\n  read_only:\n    - {path: /a, target: /b}\n", at: "filesystem.read_only[0].target", "target goes with source")
        expectOnly("filesystem:\n  read_only:\n    - {optional: true}\n", at: "filesystem.read_only[0]", "missing path")
        expectOnly("filesystem:\n  read_only:\n    - {path: /a, optonal: true}\n", at: "filesystem.read_only[0].optonal", "did you mean \"optional\"?")
    }

    @Test func unknownSyscallIsRefusedWithSuggestion() {
        expectOnly("seccomp:\n  deny: [ptrcae]\n", at: "seccomp.deny[0]", "unknown system call \"ptrcae\" (did you mean \"ptrace\"?)")
        expectOnly("seccomp:\n  allow: [not_a_syscall_at_all]\n", at: "seccomp.allow[0]", "unknown system call")
        expectOnly("seccomp:\n  deny: [ptrace, ptrace]\n", at: "seccomp.deny[1]", "listed twice")
        expectOnly("seccomp:\n  deny: [ptrace]\n  allow: [ptrace]\n", at: "seccomp.allow[0]", "both denied and allowed")
    }

    @Test func syscallsOfOtherArchitecturesAreAccepted() throws {
        let p = try F.load("seccomp:\n  deny: [socketcall, personality]\n")
        #expect(p.seccomp.deny == ["socketcall", "personality"])
    }

    @Test func errnoByNameOrNumber() throws {
        #expect(try F.load("seccomp:\n  errno: EACCES\n").seccomp.action == .errno(EACCES))
        #expect(try F.load("seccomp:\n  action: errno\n  errno: 38\n").seccomp.action == .errno(38))
        #expect(try F.load("seccomp:\n  action: kill\n").seccomp.action == .kill)
        expectOnly("seccomp:\n  errno: EPREM\n", at: "seccomp.errno", "unknown errno \"EPREM\" (did you mean \"EPERM\"?)")
        expectOnly("seccomp:\n  errno: 4096\n", at: "seccomp.errno", "1…4095")
        expectOnly("seccomp:\n  errno: 0\n", at: "seccomp.errno", "1…4095")
        expectOnly("seccomp:\n  action: kill\n  errno: EPERM\n", at: "seccomp.errno", "only to action: errno")
        expectOnly("seccomp:\n  action: trap\n", at: "seccomp.action", "expected errno or kill, got \"trap\"")
    }

    @Test func workdirMustBeInATmpfs() {
        expectOnly("filesystem:\n  workdir: /work\n", at: "filesystem.workdir", "\"/work\" is not inside a tmpfs", "tmpfs: /tmp")
        expectOnly("filesystem:\n  workdir: /tmpx\n", at: "filesystem.workdir", "not inside a tmpfs")
        expectOnly("filesystem:\n  tmpfs:\n    - {path: /scratch, size: 8MiB}\n", at: "filesystem.workdir", "the default working directory \"/tmp\"")
        expectOnly("filesystem:\n  tmpfs: []\n", at: "filesystem.workdir", "there is no tmpfs")
    }

    @Test func workdirBelowATmpfsIsAccepted() throws {
        let p = try F.load("filesystem:\n  tmpfs:\n    - {path: /scratch, size: 8MiB}\n  workdir: /scratch/job\n")
        #expect(p.filesystem.workdir == "/scratch/job")
    }

    @Test func tmpfsLargerThanMemoryIsRefused() {
        expectOnly("limits:\n  memory: 32MiB\n", at: "filesystem.tmpfs[0]", "64MiB is larger than limits.memory (32MiB)", "count against the memory limit")
        expectOnly("limits:\n  memory: 32MiB\nfilesystem:\n  tmpfs:\n    - {path: /tmp, size: 33MiB}\n",
                   at: "filesystem.tmpfs[0].size", "33MiB is larger than limits.memory (32MiB)", "at most 32MiB")
        // An invalid memory limit does not cascade into a tmpfs complaint.
        expectOnly("limits:\n  memory: lots\n", at: "limits.memory", "expected a size")
    }

    @Test func tmpfsEntriesNeedPathAndSize() {
        expectOnly("filesystem:\n  tmpfs: [/tmp]\n", at: "filesystem.tmpfs[0]", "expected a mapping with path and size")
        expectOnly("filesystem:\n  tmpfs:\n    - {path: /tmp}\n", at: "filesystem.tmpfs[0]", "missing size")
    }

    @Test func devicesAreNamed() throws {
        let p = try F.load("filesystem:\n  devices: [null, full]\n")
        #expect(p.filesystem.devices == [.null, .full])
        expectOnly("filesystem:\n  devices: [null, tty]\n", at: "filesystem.devices[1]", "unknown device \"tty\"")
        expectOnly("filesystem:\n  devices: [zero, zero]\n", at: "filesystem.devices[1]", "listed twice")
    }

    @Test func environmentNamesAreChecked() throws {
        expectOnly("environment:\n  set:\n    1BAD: x\n", at: "environment.set.1BAD", "not a valid variable name")
        expectOnly("environment:\n  set:\n    MY-VAR: x\n", at: "environment.set.MY-VAR", "not a valid variable name")
        expectOnly("environment:\n  set:\n    EMPTY:\n", at: "environment.set.EMPTY", "write \"\" for an empty value")
        expectOnly("environment:\n  allow: [APP_*, \"BAD NAME\"]\n", at: "environment.allow[1]", "not a variable name or a PREFIX_* pattern")
        let p = try F.load("environment:\n  set:\n    DEBUG: yes\n    RATIO: 1.50\n    EMPTY: \"\"\n  allow: [APP_*, TZ]\n")
        #expect(p.environment.set == ["DEBUG": "yes", "RATIO": "1.50", "EMPTY": ""])  // the text as written
        #expect(p.environment.allows("APP_MODE") && p.environment.allows("TZ") && !p.environment.allows("PATH"))
    }

    @Test func overridableEntriesAreLimitNames() {
        expectOnly("overridable: [memory, wall_tme]\n", at: "overridable[1]", "unknown limit \"wall_tme\" (did you mean \"wall_time\"?)")
        expectOnly("overridable: [memory, memory]\n", at: "overridable[1]", "listed twice")
        expectOnly("overridable: memory\n", at: "overridable", "expected a list of limit names")
    }

    @Test func hostnameIsChecked() throws {
        #expect(try F.load("hostname: box-1.example\n").hostname == "box-1.example")
        expectOnly("hostname: my_host\n", at: "hostname", "expected a hostname")
        expectOnly("hostname: \(String(repeating: "a", count: 65))\n", at: "hostname", "at most 64 characters")
        expectOnly("hostname: -a\n", at: "hostname", "expected a hostname")
    }

    @Test func networkAndOutputChoices() throws {
        #expect(try F.load("network: host\n").network == .host)
        #expect(try F.load("output:\n  on_overflow: kill\n").outputOverflow == .kill)
        expectOnly("network: hots\n", at: "network", "expected none or host, got \"hots\" (did you mean \"host\"?)")
        expectOnly("output:\n  on_overflow: drop\n", at: "output.on_overflow", "expected truncate or kill")
    }

    // MARK: Syntax

    @Test func yamlSyntaxErrorGivesLineAndColumn() {
        let error = F.error("limits:\n  memory: 1GiB\n  wall_time: [10s\n", file: "p.yaml")
        guard case .syntax(let file, let line, _, let message)? = error else {
            Issue.record("expected a syntax error, got \(String(describing: error))")
            return
        }
        #expect(file == "p.yaml")
        #expect(line == 4)
        #expect(!message.isEmpty)
        #expect(error!.description.hasPrefix("p.yaml:4:"))
        #expect(error!.description.contains("YAML syntax error"))
    }

    @Test func tabIndentationIsASyntaxError() {
        guard case .syntax(_, let line, _, _)? = F.error("limits:\n\tmemory: 1GiB\n") else {
            Issue.record("expected a syntax error")
            return
        }
        #expect(line == 2)
    }

    @Test func duplicateKeyIsASyntaxError() {
        let error = F.error("network: none\nlimits: {}\nnetwork: host\n", file: "p.yaml")
        guard case .syntax(_, let line, _, let message)? = error else {
            Issue.record("expected a syntax error, got \(String(describing: error))")
            return
        }
        #expect(line == 1)
        #expect(message.contains("\"network\" appears more than once"))
    }

    // MARK: Every problem at once

    @Test func allProblemsOfAFileAreReportedInFileOrder() {
        let yaml = """
            deny_netwrok: true
            limits:
              memory: lots
              wall_time: 10
              processes: 0
            filesystem:
              read_only:
                - usr
                - /nonexistent-confine-test/x
              workdir: /work
            seccomp:
              deny: [ptrcae]
            environment:
              set:
                1BAD: x
            overridable: [memroy]
            """
        let error = F.error(yaml, file: "policies/bad.yaml", exists: FileManager.default.fileExists(atPath:))
        let problems = error?.problems ?? []
        #expect(problems.map(\.keyPath) == [
            "deny_netwrok", "limits.memory", "limits.wall_time", "limits.processes",
            "filesystem.read_only[0]", "filesystem.read_only[1]", "filesystem.workdir",
            "seccomp.deny[0]", "environment.set.1BAD", "overridable[0]",
        ])
        #expect(problems.map { $0.line ?? 0 } == [1, 3, 4, 5, 8, 9, 10, 12, 15, 16])
        let lines = error?.description.split(separator: "\n") ?? []
        #expect(lines.count == 10)
        #expect(lines.allSatisfy { $0.hasPrefix("policies/bad.yaml: ") })
    }
}

/// A fresh directory under the system's temporary directory, removed with the value.
final class TemporaryDirectory {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "confine-policy-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
