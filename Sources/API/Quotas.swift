import Domain
import Sandbox

/// A token's quotas on what it runs: which policies it may name (`policies`) and how loose
/// the effective policy may be (`max_policy`: network, every limit, syscalls allowed back).
/// Over quota is 429 with the quota and the offending value named. The third quota,
/// `max_active`, is counted by the store when an execution is enqueued.
enum Quotas {
    /// Refuses `effective` (the named policy with the job's and the run's limits applied)
    /// when the token may not run it.
    static func check(_ effective: Policy, token: AccessToken, policies: PolicySet) throws(Problem) {
        if let allowed = token.policies, !allowed.contains(effective.name) {
            throw exceeded("policies", field: "policy", "policy \(effective.name) is not among this token's policies ("
                           + (allowed.isEmpty ? "none" : allowed.joined(separator: ", ")) + ")")
        }
        guard let ceilingName = token.maxPolicy else { return }
        guard let ceiling = policies[ceilingName] else {
            throw exceeded("max_policy", field: "policy", "this token's max_policy \(ceilingName) is no longer among the server's "
                           + "policies; ask an admin to give the token another")
        }
        if effective.network != .none, ceiling.network == .none {
            throw exceeded("max_policy", field: "policy", "policy \(effective.name) gives network \(effective.network.rawValue); "
                           + "this token's max_policy \(ceilingName) allows no network")
        }
        for name in LimitName.allCases where effective.limits[name].isLooser(than: ceiling.limits[name]) {
            throw exceeded("max_policy", field: "limits.\(name.rawValue)", "\(name.rawValue) \(effective.limits[name]) is above this "
                           + "token's max_policy \(ceilingName) (\(ceiling.limits[name])); set limits.\(name.rawValue) to at most that")
        }
        let extraSyscalls = Set(effective.seccomp.allow).subtracting(ceiling.seccomp.allow)
        if !extraSyscalls.isEmpty {
            throw exceeded("max_policy", field: "policy", "policy \(effective.name) allows the syscalls "
                           + "\(extraSyscalls.sorted().joined(separator: ", ")), which this token's max_policy \(ceilingName) denies")
        }
    }

    static func exceeded(_ quota: String, field: String?, _ detail: String) -> Problem {
        var problem = Problem("quota-exceeded", .tooManyRequests, "over this token's quota \(quota): \(detail)", field: field)
        problem.extra["quota"] = .string(quota)
        return problem
    }
}
