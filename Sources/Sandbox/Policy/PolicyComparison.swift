/// One way a policy gives a program more than another: what it is, and the field it is in.
public struct PolicyWidening: Sendable, Equatable, CustomStringConvertible {
    /// The policy key path that widens (`network`, `limits.memory`, `filesystem.read_only`, …).
    public var field: String
    /// What it gives beyond the other policy, in words.
    public var detail: String
    public var description: String { "\(field): \(detail)" }
}

extension Policy {
    /// Every way this policy is looser than `ceiling`: network, each limit, host paths bound,
    /// tmpfs mounts, device nodes, the seccomp mode and action, syscalls allowed back or not
    /// denied, and socket families. Empty when this policy gives nothing the ceiling does not.
    public func widenings(over ceiling: Policy) -> [PolicyWidening] {
        var out: [PolicyWidening] = []
        if network != .none, ceiling.network == .none {
            out.append(.init(field: "network", detail: "network \(network.rawValue) where \(ceiling.name) allows no network"))
        }
        for name in LimitName.allCases where limits[name].isLooser(than: ceiling.limits[name]) {
            out.append(.init(field: "limits.\(name.rawValue)", detail: "\(name.rawValue) \(limits[name]) is above \(ceiling.name)'s \(ceiling.limits[name])"))
        }
        // Host paths: every bound source must be one the ceiling binds, or below one.
        let ceilingSources = ceiling.filesystem.readOnly.map(\.source)
        let extraPaths = filesystem.readOnly.map(\.source).filter { source in
            !ceilingSources.contains { Self.path(source, isWithin: $0) }
        }
        if !extraPaths.isEmpty {
            out.append(.init(field: "filesystem.read_only", detail: "binds the host paths \(extraPaths.joined(separator: ", ")), which \(ceiling.name) does not"))
        }
        for mount in filesystem.tmpfs {
            guard let theirs = ceiling.filesystem.tmpfs.first(where: { $0.path == mount.path }) else {
                out.append(.init(field: "filesystem.tmpfs", detail: "a writable tmpfs at \(mount.path), which \(ceiling.name) does not have"))
                continue
            }
            if mount.sizeBytes > theirs.sizeBytes {
                out.append(.init(field: "filesystem.tmpfs", detail: "the tmpfs at \(mount.path) is \(mount.sizeBytes) bytes, above \(ceiling.name)'s \(theirs.sizeBytes)"))
            }
        }
        let extraDevices = filesystem.devices.filter { !ceiling.filesystem.devices.contains($0) }
        if !extraDevices.isEmpty {
            out.append(.init(field: "filesystem.devices", detail: "offers /dev/\(extraDevices.map(\.rawValue).joined(separator: ", /dev/")), which \(ceiling.name) does not"))
        }
        out += seccomp.widenings(over: ceiling.seccomp, ceilingName: ceiling.name)
        return out
    }

    /// Whether `path` is `base` or below it (`/usr/lib` is within `/usr`, `/usrx` is not).
    static func path(_ path: String, isWithin base: String) -> Bool {
        if base == "/" || path == base { return true }
        return path.hasPrefix(base.hasSuffix("/") ? base : base + "/")
    }
}

extension SeccompPolicy {
    /// The ways this filter refuses less than `ceiling`'s.
    func widenings(over ceiling: SeccompPolicy, ceilingName: String) -> [PolicyWidening] {
        var out: [PolicyWidening] = []
        if case .kill = ceiling.action, case .errno = action {
            out.append(.init(field: "seccomp.action", detail: "refused system calls fail with an errno where \(ceilingName) kills the process"))
        }
        if ceiling.mode == .allowList, mode == .denyList {
            out.append(.init(field: "seccomp.mode", detail: "a deny list (every system call not listed is allowed) where \(ceilingName) is an allow list"))
        }
        let mine = Set(SeccompProgram.permittedSyscalls(self)), theirs = Set(SeccompProgram.permittedSyscalls(ceiling))
        let extra = mine.subtracting(theirs)
        if !extra.isEmpty {
            out.append(.init(field: "seccomp", detail: "allows the system calls \(extra.sorted().joined(separator: ", ")), which \(ceilingName) refuses"))
        }
        let deniedByCeiling = Set(SeccompProgram.deniedSyscalls(ceiling)).subtracting(SeccompProgram.deniedSyscalls(self))
        if !deniedByCeiling.isEmpty, mode == .denyList {
            out.append(.init(field: "seccomp", detail: "allows the system calls \(deniedByCeiling.sorted().joined(separator: ", ")), which \(ceilingName) denies"))
        }
        let families = Set(socketFamilies).subtracting(ceiling.socketFamilies)
        if !families.isEmpty {
            out.append(.init(field: "seccomp.socket_families", detail: "allows the socket families \(families.map(\.rawValue).sorted().joined(separator: ", ")), which \(ceilingName) does not"))
        }
        return out
    }
}

extension Policy {
    /// Every way this policy allows more than `other`, one item a line: network, limit by
    /// limit, mount by mount, device by device, the seccomp mode and action, system call by
    /// system call, socket family by family. Empty when it allows nothing `other` does not.
    public func allowances(beyond other: Policy) -> [PolicyWidening] {
        var out: [PolicyWidening] = []
        for widening in widenings(over: other) where !["filesystem.read_only", "filesystem.devices", "seccomp", "seccomp.socket_families"].contains(widening.field) {
            out.append(widening)
        }
        let theirs = other.filesystem.readOnly.map(\.source)
        for bind in filesystem.readOnly where !theirs.contains(where: { Self.path(bind.source, isWithin: $0) }) {
            out.append(.init(field: "filesystem.read_only", detail: "binds \(bind.source)\(bind.target == bind.source ? "" : " at \(bind.target)")"))
        }
        for device in filesystem.devices where !other.filesystem.devices.contains(device) {
            out.append(.init(field: "filesystem.devices", detail: "offers /dev/\(device.rawValue)"))
        }
        let mine = Set(SeccompProgram.permittedSyscalls(seccomp)), permittedByOther = Set(SeccompProgram.permittedSyscalls(other.seccomp))
        for name in mine.subtracting(permittedByOther).sorted() {
            out.append(.init(field: "seccomp", detail: "allows \(name)"))
        }
        if seccomp.mode == .denyList {
            for name in Set(SeccompProgram.deniedSyscalls(other.seccomp)).subtracting(SeccompProgram.deniedSyscalls(seccomp)).sorted()
            where !mine.subtracting(permittedByOther).contains(name) {
                out.append(.init(field: "seccomp", detail: "allows \(name)"))
            }
        }
        for family in seccomp.socketFamilies where !other.seccomp.socketFamilies.contains(family) {
            out.append(.init(field: "seccomp.socket_families", detail: "allows \(family.rawValue) sockets"))
        }
        if seccomp.allow.contains("unshare") && !other.seccomp.allow.contains("unshare") {
            out.append(.init(field: "seccomp", detail: "lets clone create namespaces (allow: unshare)"))
        }
        return out
    }
}
