import HumanText
import Sandbox
import Wire

extension WirePolicy {
    /// A policy as the API answers it: the sections of its YAML rendering (`renderYAML`), in
    /// that order and with the same values — limits in human units, nil where unlimited, the
    /// read-only mounts in the file's short or long form —, plus its name and the YAML itself.
    init(_ policy: Policy) {
        let filesystem = policy.filesystem
        let seccomp = policy.seccomp
        let (action, errno): (String, String?) = switch seccomp.action {
        case .kill: ("kill", nil)
        case .errno(let value): ("errno", SyscallNames.errnoName(value))
        }
        self.init(
            name: policy.name,
            description: policy.description,
            limits: Dictionary(uniqueKeysWithValues: LimitName.allCases.map { ($0.rawValue, Self.limitText(policy.limits[$0])) }),
            overridable: policy.overridable.sorted().map(\.rawValue),
            network: policy.network.rawValue,
            output: WirePolicyOutput(on_overflow: policy.outputOverflow.rawValue),
            hostname: policy.hostname,
            filesystem: WirePolicyFilesystem(
                read_only: filesystem.readOnly.map(Self.mount),
                tmpfs: filesystem.tmpfs.map { WirePolicyTmpfs(path: $0.path, size: HumanUnits.formatBytes($0.sizeBytes)) },
                devices: filesystem.devices.map(\.rawValue),
                workdir: filesystem.workdir),
            seccomp: WirePolicySeccomp(mode: seccomp.mode.rawValue, action: action, errno: errno, deny: seccomp.deny,
                                       allow: seccomp.allow, socket_families: seccomp.socketFamilies.map(\.rawValue)),
            environment: WirePolicyEnvironment(set: policy.environment.set, allow: policy.environment.allow),
            yaml: policy.renderYAML())
    }

    /// A limit in human units as the policy file reads it back: nil for `none`, a number without
    /// a fraction of zero (a cpu_quota of `2.0` is `2`).
    static func limitText(_ value: LimitValue) -> String? {
        let text = value.description
        if text == "none" { return nil }
        if text.contains("."), let number = Double(text), number.isFinite {
            return number.rounded() == number && abs(number) < 9e15 ? String(Int64(number)) : String(number)
        }
        return text
    }

    /// A read-only mount in the policy file's form: the path alone when bound at the same place.
    static func mount(_ mount: BindMount) -> WirePolicyMount {
        if mount.source == mount.target {
            return mount.optional ? .bind(WirePolicyBindMount(path: mount.source, optional: true)) : .path(mount.source)
        }
        return .bind(WirePolicyBindMount(source: mount.source, target: mount.target, optional: mount.optional ? true : nil))
    }
}
