import Domain
import Sandbox
import Wire

/// A token's quotas on what it runs: which policies it may name (`policies`) and how loose
/// the effective policy may be (`max_policy`: network, every limit, host paths, seccomp, socket families).
/// Over quota is 429 with the quota and the offending value named. The third quota,
/// `max_active`, is counted by the store when an execution is enqueued.
enum Quotas {
    /// Refuses `effective` (the named policy with the job's and the run's limits applied)
    /// when the token may not run it.
    static func check(_ effective: Policy, token: AccessToken, policies: PolicySet) throws(Problem) {
        if let allowed = token.policies, !allowed.contains(where: { ExactName.same($0, effective.name) }) {
            throw exceeded("policies", field: "policy", "policy \(effective.name) is not among this token's policies ("
                           + (allowed.isEmpty ? "none" : allowed.joined(separator: ", ")) + ")")
        }
        guard let ceilingName = token.maxPolicy else { return }
        guard let ceiling = policies[ceilingName] else {
            throw exceeded("max_policy", field: "policy", "this token's max_policy \(ceilingName) is no longer among the server's "
                           + "policies; ask an admin to give the token another")
        }
        // Everything that widens a policy: network, every limit, host paths, tmpfs, devices,
        // the seccomp mode and action, syscalls and socket families allowed.
        if let first = effective.widenings(over: ceiling).first {
            let field = first.field.hasPrefix("limits.") ? first.field : "policy"
            let hint = first.field.hasPrefix("limits.") ? "; set \(first.field) to at most that" : ""
            throw exceeded("max_policy", field: field, "policy \(effective.name) is looser than this token's max_policy \(ceilingName): "
                           + "\(first)\(hint)")
        }
    }

    /// Refuses a run priority above the token's ceiling (`max_priority`, by default 0 for
    /// submitters): priority is not a weapon against other tenants.
    static func check(priority: Int, token: AccessToken) throws(Problem) {
        let ceiling = token.priorityCeiling
        guard priority > ceiling else { return }
        throw exceeded("max_priority", field: "priority", "priority \(priority) is above this token's ceiling \(ceiling)"
                       + (token.maxPriority == nil ? " (the default for the role \(token.role.rawValue); an admin may give the token max_priority)" : " (max_priority)"))
    }

    static func exceeded(_ quota: String, field: String?, _ detail: String) -> Problem {
        var problem = Problem("quota-exceeded", .tooManyRequests, "over this token's quota \(quota): \(detail)", field: field)
        problem.extra.quota = quota
        return problem
    }
}
