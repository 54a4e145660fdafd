import HumanText
extension Policy {
    /// The effective policy as YAML in the policy-file schema: every field, human units, keys in
    /// schema order. Promise: loading the text back (`PolicyLoader.load(yaml:name:file:)`, with
    /// the same name, on a host where the required paths exist) gives a policy equal to `self`.
    public func renderYAML() -> String {
        var out: [String] = []
        func line(_ indent: Int, _ text: String) { out.append(String(repeating: "  ", count: indent) + text) }
        func flow(_ items: [String]) -> String { "[" + items.map(Self.yamlScalar).joined(separator: ", ") + "]" }

        line(0, "# Policy \(Self.yamlScalar(name)), effective values.")
        line(0, "description: \(Self.yamlScalar(description))")
        line(0, "limits:")
        for limit in LimitName.allCases {
            line(1, "\(limit.rawValue): \(limits[limit])")
        }
        line(0, "overridable: \(flow(overridable.sorted().map(\.rawValue)))")
        line(0, "network: \(network.rawValue)")
        line(0, "output:")
        line(1, "on_overflow: \(outputOverflow.rawValue)")
        line(0, "hostname: \(Self.yamlScalar(hostname))")
        line(0, "filesystem:")
        if filesystem.readOnly.isEmpty {
            line(1, "read_only: []")
        } else {
            line(1, "read_only:")
            for mount in filesystem.readOnly {
                if mount.source == mount.target && !mount.optional {
                    line(2, "- \(Self.yamlScalar(mount.source))")
                } else if mount.source == mount.target {
                    line(2, "- path: \(Self.yamlScalar(mount.source))")
                    line(2, "  optional: true")
                } else {
                    line(2, "- source: \(Self.yamlScalar(mount.source))")
                    line(2, "  target: \(Self.yamlScalar(mount.target))")
                    if mount.optional { line(2, "  optional: true") }
                }
            }
        }
        if filesystem.tmpfs.isEmpty {
            line(1, "tmpfs: []")
        } else {
            line(1, "tmpfs:")
            for mount in filesystem.tmpfs {
                line(2, "- path: \(Self.yamlScalar(mount.path))")
                line(2, "  size: \(HumanUnits.formatBytes(mount.sizeBytes))")
            }
        }
        // Device names are read as raw text, so `null` stays plain (it names /dev/null).
        line(1, "devices: [\(filesystem.devices.map(\.rawValue).joined(separator: ", "))]")
        line(1, "workdir: \(Self.yamlScalar(filesystem.workdir))")
        line(0, "seccomp:")
        line(1, "mode: \(seccomp.mode.rawValue)")
        switch seccomp.action {
        case .kill:
            line(1, "action: kill")
        case .errno(let e):
            line(1, "action: errno")
            line(1, "errno: \(SyscallNames.errnoName(e))")
        }
        line(1, "deny: \(flow(seccomp.deny))")
        line(1, "allow: \(flow(seccomp.allow))")
        line(1, "socket_families: [\(seccomp.socketFamilies.map(\.rawValue).joined(separator: ", "))]")
        line(0, "environment:")
        if environment.set.isEmpty {
            line(1, "set: {}")
        } else {
            line(1, "set:")
            for key in environment.set.keys.sorted() {
                line(2, "\(key): \(Self.yamlScalar(environment.set[key]!))")
            }
        }
        line(1, "allow: \(flow(environment.allow))")
        return out.joined(separator: "\n") + "\n"
    }

    /// A string as a YAML scalar: plain when that reads back as the same text (`/usr`, `C.UTF-8`),
    /// double-quoted with escapes otherwise (`"1.0"`, `"yes"`, `"a: b"`, `"*"`).
    static func yamlScalar(_ s: String) -> String {
        let reserved: Set<String> = ["", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
                                     "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"]
        let safe = s.unicodeScalars.allSatisfy { c in
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || "_./-+".unicodeScalars.contains(c)
        }
        if safe, !reserved.contains(s), let first = s.unicodeScalars.first,
           (first >= "a" && first <= "z") || (first >= "A" && first <= "Z") || first == "_" || first == "/" {
            return s
        }
        return doubleQuoted(s)
    }

    /// A string in double quotes with YAML's escapes (also how messages quote a value).
    static func doubleQuoted(_ s: String) -> String { Quoting.doubleQuoted(s) }
}

extension SeccompPolicy {
    /// What the filter does, in YAML comment lines for `confine policy check`: the mode, the
    /// system calls permitted (an allow list) and those refused with the policy's action.
    public func renderEffectiveComment() -> String {
        var out: [String] = []
        func wrapped(_ title: String, _ names: [String]) {
            out.append("# \(title) (\(names.count)):")
            var current = "#  "
            for name in names {
                if current.count + name.count + 1 > 100 {
                    out.append(current)
                    current = "#  "
                }
                current += " " + name
            }
            if current != "#  " { out.append(current) }
        }
        let actionText: String
        switch action {
        case .kill: actionText = "kill the process"
        case .errno(let e): actionText = "fail with \(SyscallNames.errnoName(e))"
        }
        switch mode {
        case .allowList:
            wrapped("seccomp allow list: permitted system calls (any other fails with ENOSYS)", SeccompProgram.permittedSyscalls(self))
        case .denyList:
            out.append("# seccomp deny list: every system call not refused below is permitted")
        }
        wrapped("refused system calls (\(actionText))", SeccompProgram.deniedSyscalls(self).sorted())
        out.append("# always: clone3 fails with ENOSYS; clone may not create namespaces\(allow.contains("unshare") ? " (allowed here: unshare)" : ""); "
                   + "personality may only query or keep PER_LINUX; sockets only in \(socketFamilies.map(\.rawValue).joined(separator: ", ")) (others EAFNOSUPPORT)")
        return out.joined(separator: "\n") + "\n"
    }
}
