import Sandbox

/// Why `confine serve` refuses to start: isolation the host lacks that the configuration does
/// not allow missing, each piece named with the reason, and the ways out.
public struct IsolationRefusal: Error, CustomStringConvertible, Equatable {
    /// The missing pieces that stop the start, with why each is missing.
    public var missing: [IsolationFeature: String]

    public var description: String {
        let pieces = missing.keys.sorted()
        let named = pieces.map { "\($0.rawValue) (\(missing[$0]!))" }.joined(separator: "; ")
        let waivable = pieces.filter(\.canBeWaived)
        var text = "this host lacks what the sandbox needs: \(named). Fix the host (`confine doctor` names each fix)"
        if waivable.count == pieces.count {
            let list = waivable.map(\.rawValue).joined(separator: ", ")
            text += ", or accept weaker isolation explicitly with allow_weaker: [\(list)] in the configuration "
                + "(CONFINE_ALLOW_WEAKER=\(waivable.map(\.rawValue).joined(separator: ","))): "
                + waivable.map { "without \($0.rawValue), \($0.consequence)" }.joined(separator: "; ")
        } else {
            text += "; Confine cannot run without user_namespaces"
        }
        return text
    }
}

extension ServerConfiguration {
    /// Fits the sandbox to the host: asks `probe` what is missing; refuses (naming each piece)
    /// when something missing is not in `allowWeaker`, else turns off what is missing, so that
    /// runs really go without it. Returns the isolation runs now go without (empty: all of it).
    public mutating func adaptIsolation(to probe: HostFeatureProbe) throws(IsolationRefusal) -> [IsolationFeature] {
        let missing = probe.missing(sandbox)
        let refused = missing.filter { !allowWeaker.contains($0.key) }
        guard refused.isEmpty else { throw IsolationRefusal(missing: refused) }
        if missing[.cgroups] != nil { sandbox.cgroups = .disabled }
        if missing[.seccomp] != nil { sandbox.seccomp = .disabled }
        return sandbox.weakenedIsolation
    }
}
