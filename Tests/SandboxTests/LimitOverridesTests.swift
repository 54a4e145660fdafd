import Testing
@testable import Sandbox

@Suite("LimitOverrides")
struct LimitOverridesTests {
    /// The default limits, everything overridable, tmpfs 64MiB.
    var policy: Policy {
        Policy(name: "p", overridable: Set(LimitName.allCases))
    }

    func refusal(_ policy: Policy, _ texts: String...) -> PolicyError? {
        do {
            _ = try policy.applying(LimitOverrides(parsing: texts))
            return nil
        } catch {
            return error
        }
    }

    @Test func parsesNameEqualsValue() throws {
        let o = try LimitOverrides(parsing: ["memory=128MiB", "wall_time=2s", "cpu_quota=0.5", "processes=8"])
        #expect(o[.memory] == .bytes(128 << 20))
        #expect(o[.wallTime] == .milliseconds(2_000))
        #expect(o[.cpuQuota] == .cores(0.5))
        #expect(o[.processes] == .count(8))
        #expect(o[.stack] == nil)
        #expect(o.description == "wall_time=2s memory=128MiB processes=8 cpu_quota=0.5")
        #expect(try LimitOverrides(parsing: o.description.split(separator: " ").map(String.init)) == o)
        #expect(try LimitOverrides(parsing: ["cpu_quota=none"])[.cpuQuota] == .cores(nil))
    }

    @Test func malformedTextsAreRefused() {
        func message(_ text: String) -> String {
            do { _ = try LimitOverrides(parsing: [text]); return "" } catch { return error.description }
        }
        #expect(message("memory").contains("expected name=value"))
        #expect(message("memroy=1MiB").contains("unknown limit \"memroy\" (did you mean \"memory\"?)"))
        #expect(message("memory=lots") == "limit override \"memory=lots\": expected a size such as 256MiB or 1.5GiB, got \"lots\"")
        #expect(message("wall_time=5").contains("needs a unit"))
        #expect(message("processes=0").contains("must be at least 1"))
        #expect(message("memory=0").contains("must be at least 1MiB"))
        #expect(throws: PolicyError.invalidOverride(limit: .memory, text: "memory=2MiB", message: "memory is given more than once")) {
            try LimitOverrides(parsing: ["memory=1MiB", "memory=2MiB"])
        }
    }

    @Test func tighterOverridesApply() throws {
        let applied = try policy.applying(LimitOverrides(parsing: ["memory=128MiB", "wall_time=2s", "cpu_weight=10", "cpu_quota=0.5"]))
        #expect(applied.limits.memoryBytes == 128 << 20)
        #expect(applied.limits.wallTimeMs == 2_000)
        #expect(applied.limits.cpuWeight == 10)
        #expect(applied.limits.cpuQuota == 0.5)
        #expect(applied.limits.cpuTimeMs == Limits().cpuTimeMs)  // untouched
        #expect(try policy.applying(LimitOverrides()) == policy)
    }

    @Test func equalOverrideIsAccepted() throws {
        #expect(try policy.applying(LimitOverrides(parsing: ["memory=256MiB"])) == policy)
    }

    @Test func looserOverridesAreRefused() {
        #expect(refusal(policy, "memory=512MiB") == .overrideLooser(policy: "p", limit: .memory, requested: "512MiB", policyValue: "256MiB"))
        #expect(refusal(policy, "wall_time=11s") == .overrideLooser(policy: "p", limit: .wallTime, requested: "11s", policyValue: "10s"))
        #expect(refusal(policy, "cpu_weight=51") == .overrideLooser(policy: "p", limit: .cpuWeight, requested: "51", policyValue: "50"))
        #expect(refusal(policy, "cpu_quota=2") == .overrideLooser(policy: "p", limit: .cpuQuota, requested: "2.0", policyValue: "1.0"))
        #expect(refusal(policy, "cpu_quota=none") == .overrideLooser(policy: "p", limit: .cpuQuota, requested: "none", policyValue: "1.0"))
        #expect(refusal(policy, "memory=512MiB")?.description
            == "memory=512MiB is looser than policy \"p\"'s 256MiB; an override may only tighten a limit")
    }

    @Test func anyQuotaTightensAPolicyWithoutOne() throws {
        var p = policy
        p.limits.cpuQuota = nil
        #expect(try p.applying(LimitOverrides(parsing: ["cpu_quota=4"])).limits.cpuQuota == 4)
        #expect(try p.applying(LimitOverrides(parsing: ["cpu_quota=none"])).limits.cpuQuota == nil)
    }

    @Test func notOverridableLimitsAreRefused() throws {
        let strict = try PolicyLoader.load(file: PolicyFixtures.policiesDirectory + "/strict.yaml")
        let error = refusal(strict, "processes=4")
        #expect(error == .overrideNotAllowed(policy: "strict", limit: .processes, overridable: [.wallTime, .cpuTime, .memory]))
        #expect(error?.description == "policy \"strict\" does not allow overriding processes (overridable: wall_time, cpu_time, memory)")
        #expect(refusal(Policy(name: "none"), "memory=1MiB")?.description.contains("it allows no overrides") == true)
        #expect(try strict.applying(LimitOverrides(parsing: ["memory=64MiB"])).limits.memoryBytes == 64 << 20)
    }

    @Test func codeBuiltOverridesAreCheckedToo() {
        var o = LimitOverrides()
        o[.memory] = .milliseconds(5)
        #expect(throws: PolicyError.self) { try policy.applying(o) }
        o[.memory] = .bytes(1)
        #expect(throws: PolicyError.invalidOverride(limit: .memory, text: "memory=1B", message: "must be at least 1MiB, got 1B")) {
            try policy.applying(o)
        }
    }

    @Test func tighterMemoryCapsTheTmpfs() throws {
        let applied = try policy.applying(LimitOverrides(parsing: ["memory=16MiB"]))
        #expect(applied.filesystem.tmpfs == [TmpfsMount(path: "/tmp", sizeBytes: 16 << 20)])
    }
}
