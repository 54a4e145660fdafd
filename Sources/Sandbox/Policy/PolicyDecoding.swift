import HumanText
import Yams

/// The keys a policy file may hold, section by section (snake_case, as operators write them).
enum PolicySchema {
    static let top = ["description", "limits", "overridable", "network", "output", "hostname",
                      "filesystem", "seccomp", "environment"]
    static let limits = LimitName.allCases.map(\.rawValue)
    static let output = ["on_overflow"]
    static let filesystem = ["read_only", "tmpfs", "devices", "workdir"]
    static let readOnly = ["path", "source", "target", "optional"]
    static let tmpfs = ["path", "size"]
    static let seccomp = ["mode", "action", "errno", "deny", "allow", "socket_families"]
    static let environment = ["set", "allow"]

    /// Every key path a file may use, for "did you mean" when a key sits at the wrong level.
    static let allPaths: [String] = top + [("limits", limits), ("output", output), ("filesystem", filesystem),
                                           ("seccomp", seccomp), ("environment", environment)]
        .flatMap { section, keys in keys.map { "\(section).\($0)" } }
}

/// Walks a composed YAML document and builds a `Policy`, recording every problem instead of
/// stopping at the first. Values that fail keep their defaults so the walk can go on; checks that
/// relate two values (tmpfs against memory, workdir against tmpfs) run only when both are valid.
struct PolicyDecoder {
    private(set) var problems: [PolicyProblem] = []
    /// Whether a host path exists (injected so tests can decide).
    var hostPathExists: (String) -> Bool

    init(hostPathExists: @escaping (String) -> Bool) {
        self.hostPathExists = hostPathExists
    }

    // MARK: The document

    mutating func decode(_ root: Node?, name: String) -> Policy {
        var policy = Policy(name: name)
        guard let root, !root.isNull else { return policy }  // an empty file: every default
        guard let top = fields(of: root, at: "", known: PolicySchema.top) else { return policy }

        if let node = top["description"], !node.isNull,
           let text = scalar(node, at: "description", expected: "a text") {
            policy.description = text
        }
        var invalidLimits = Set<LimitName>()
        if let node = top["limits"] { decodeLimits(node, into: &policy, invalid: &invalidLimits) }
        if let node = top["overridable"] { policy.overridable = decodeOverridable(node) }
        if let node = top["network"], let mode = choice(node, at: "network", of: NetworkMode.self) {
            policy.network = mode
        }
        if let node = top["output"], let f = fields(of: node, at: "output", known: PolicySchema.output),
           let n = f["on_overflow"], let overflow = choice(n, at: "output.on_overflow", of: OutputOverflow.self) {
            policy.outputOverflow = overflow
        }
        if let node = top["hostname"], let text = scalar(node, at: "hostname", expected: "a hostname") {
            if let problem = Self.hostnameProblem(text) { report("hostname", node, problem) } else { policy.hostname = text }
        }
        let memory: UInt64? = invalidLimits.contains(.memory) ? nil : policy.limits.memoryBytes
        decodeFilesystem(top["filesystem"], memory: memory, into: &policy.filesystem)
        if let node = top["seccomp"] { decodeSeccomp(node, into: &policy.seccomp) }
        if let node = top["environment"] { decodeEnvironment(node, into: &policy.environment) }

        // File order, so that an operator reads them top to bottom.
        problems = problems.enumerated()
            .sorted { ($0.element.line ?? Int.max, $0.offset) < ($1.element.line ?? Int.max, $1.offset) }
            .map(\.element)
        return policy
    }

    // MARK: Sections

    private mutating func decodeLimits(_ node: Node, into policy: inout Policy, invalid: inout Set<LimitName>) {
        guard let f = fields(of: node, at: "limits", known: PolicySchema.limits) else { return }
        for name in LimitName.allCases {
            guard let v = f[name.rawValue] else { continue }
            let path = "limits.\(name.rawValue)"
            let text: String
            if v.isNull && name == .cpuQuota {
                text = "none"
            } else if let t = scalar(v, at: path, expected: name.expectation) {
                text = t
            } else {
                invalid.insert(name)
                continue
            }
            do {
                policy.limits[name] = try name.parse(text)
            } catch {
                report(path, v, error.message)
                invalid.insert(name)
            }
        }
    }

    private mutating func decodeOverridable(_ node: Node) -> Set<LimitName> {
        var result = Set<LimitName>()
        guard let items = list(node, at: "overridable", expected: "limit names") else { return result }
        let names = LimitName.allCases.map(\.rawValue)
        for (i, item) in items.enumerated() {
            let path = "overridable[\(i)]"
            guard let text = scalar(item, at: path, expected: "a limit name") else { continue }
            guard let limit = LimitName(rawValue: text) else {
                report(path, item, "unknown limit \(q(text))\(Suggestions.didYouMean(text, in: names)); limits are \(names.joined(separator: ", "))")
                continue
            }
            if !result.insert(limit).inserted { report(path, item, "\(text) is listed twice") }
        }
        return result
    }

    private mutating func decodeFilesystem(_ node: Node?, memory: UInt64?, into fs: inout FilesystemView) {
        var f: [String: Node] = [:]
        if let node {
            guard let fields = fields(of: node, at: "filesystem", known: PolicySchema.filesystem) else { return }
            f = fields
        }
        var targets: [String: String] = [:]  // mount target → the key path that claimed it

        if let node = f["read_only"],
           let items = list(node, at: "filesystem.read_only", expected: "paths or {source, target, optional} mappings") {
            fs.readOnly = items.enumerated().compactMap { i, item in
                readOnlyEntry(item, at: "filesystem.read_only[\(i)]", targets: &targets)
            }
        } else {
            for (i, m) in fs.readOnly.enumerated() { targets[m.target] = "filesystem.read_only[\(i)]" }
        }

        var tmpfsValid = true
        if let node = f["tmpfs"], let items = list(node, at: "filesystem.tmpfs", expected: "{path, size} mappings") {
            var mounts: [TmpfsMount] = []
            for (i, item) in items.enumerated() {
                if let m = tmpfsEntry(item, at: "filesystem.tmpfs[\(i)]", memory: memory, targets: &targets) {
                    mounts.append(m)
                } else {
                    tmpfsValid = false
                }
            }
            fs.tmpfs = mounts
        } else if f["tmpfs"] != nil {
            tmpfsValid = false
        } else {
            for (i, m) in fs.tmpfs.enumerated() {
                let path = "filesystem.tmpfs[\(i)]"
                if let other = targets[m.path] {
                    report(path, nil, "\(q(m.path)) (the default tmpfs) is already mounted by \(other)")
                }
                if let memory, m.sizeBytes > memory {
                    report(path, nil, Self.tmpfsTooLarge(m.sizeBytes, memory: memory) + " (this is the default tmpfs; set filesystem.tmpfs)")
                }
            }
        }

        if let node = f["devices"], let items = list(node, at: "filesystem.devices", expected: "device names") {
            var devices: [DeviceNode] = []
            for (i, item) in items.enumerated() {
                let path = "filesystem.devices[\(i)]"
                // Read the raw text: `null` here names /dev/null, not YAML's null.
                guard case .scalar(let s) = item else {
                    report(path, item, "expected a device name, got \(describe(item))")
                    continue
                }
                guard let device = DeviceNode(rawValue: s.string) else {
                    report(path, item, "unknown device \(q(s.string)); expected one of \(DeviceNode.allCases.map(\.rawValue).joined(separator: ", "))")
                    continue
                }
                if devices.contains(device) { report(path, item, "\(device.rawValue) is listed twice") } else { devices.append(device) }
            }
            fs.devices = devices
        }

        var workdirValid = true
        let workdirNode = f["workdir"]
        if let node = workdirNode {
            if let text = scalar(node, at: "filesystem.workdir", expected: "an absolute path"),
               let path = absolutePath(text, at: "filesystem.workdir", node: node) {
                fs.workdir = path
            } else {
                workdirValid = false
            }
        }
        if workdirValid && tmpfsValid {
            let w = fs.workdir
            if !fs.tmpfs.contains(where: { w == $0.path || w.hasPrefix($0.path + "/") }) {
                let where_ = fs.tmpfs.isEmpty
                    ? "there is no tmpfs; add one under filesystem.tmpfs"
                    : "tmpfs: \(fs.tmpfs.map(\.path).joined(separator: ", "))"
                let subject = workdirNode == nil ? "the default working directory \(q(w))" : q(w)
                report("filesystem.workdir", workdirNode,
                       "\(subject) is not inside a tmpfs; the working directory must be a tmpfs path or below one (\(where_))")
            }
        }
    }

    private mutating func readOnlyEntry(_ node: Node, at path: String, targets: inout [String: String]) -> BindMount? {
        var source: (text: String, path: String, node: Node)?
        var target: (text: String, path: String, node: Node)?
        var optional = false
        var plain = false
        switch node {
        case .scalar where !node.isNull:
            guard let text = scalar(node, at: path, expected: "a path") else { return nil }
            source = (text, path, node)
            plain = true
        case .mapping:
            guard let f = fields(of: node, at: path, known: PolicySchema.readOnly) else { return nil }
            if let n = f["optional"] {
                guard let b = bool(n, at: "\(path).optional") else { return nil }
                optional = b
            }
            switch (f["path"], f["source"]) {
            case (.some, .some):
                report(path, node, "give either path (the same path inside) or source (with target), not both")
                return nil
            case (.some(let n), nil):
                if f["target"] != nil {
                    report("\(path).target", f["target"], "target goes with source, not path: write source: and target:")
                    return nil
                }
                guard let t = scalar(n, at: "\(path).path", expected: "an absolute path") else { return nil }
                source = (t, "\(path).path", n)
            case (nil, .some(let n)):
                guard let t = scalar(n, at: "\(path).source", expected: "an absolute path") else { return nil }
                source = (t, "\(path).source", n)
            case (nil, nil):
                report(path, node, "missing path (or source and target)")
                return nil
            }
            if let n = f["target"] {
                guard let t = scalar(n, at: "\(path).target", expected: "an absolute path") else { return nil }
                target = (t, "\(path).target", n)
            }
        default:
            report(path, node, "expected a path, or a mapping with path (or source and target) and optional, got \(describe(node))")
            return nil
        }
        guard let source, let sourcePath = absolutePath(source.text, at: source.path, node: source.node) else { return nil }
        let target_ = target ?? source
        guard let targetPath = absolutePath(target_.text, at: target_.path, node: target_.node) else { return nil }
        guard checkTarget(targetPath, at: target_.path, node: target_.node, targets: &targets) else { return nil }
        if !optional && !hostPathExists(sourcePath) {
            let fix = plain
                ? "write it as {path: \(sourcePath), optional: true} to skip it where it is missing"
                : "add optional: true to skip it where it is missing"
            report(source.path, source.node, "\(q(sourcePath)) does not exist on this host; \(fix)")
            return nil
        }
        return BindMount(source: sourcePath, target: targetPath, optional: optional)
    }

    private mutating func tmpfsEntry(_ node: Node, at path: String, memory: UInt64?, targets: inout [String: String]) -> TmpfsMount? {
        guard case .mapping = node else {
            report(path, node, "expected a mapping with path and size, such as {path: /tmp, size: 64MiB}, got \(describe(node))")
            return nil
        }
        guard let f = fields(of: node, at: path, known: PolicySchema.tmpfs) else { return nil }
        var ok = true
        var mountPath: String?
        if let n = f["path"] {
            if let t = scalar(n, at: "\(path).path", expected: "an absolute path"),
               let p = absolutePath(t, at: "\(path).path", node: n),
               checkTarget(p, at: "\(path).path", node: n, targets: &targets) {
                mountPath = p
            }
        } else {
            report(path, node, "missing path")
            ok = false
        }
        var size: UInt64?
        if let n = f["size"] {
            if let t = scalar(n, at: "\(path).size", expected: HumanUnits.sizeExample) {
                do {
                    let bytes = try HumanUnits.parseBytes(t)
                    if bytes == 0 {
                        report("\(path).size", n, "must be greater than 0")
                    } else if let memory, bytes > memory {
                        report("\(path).size", n, Self.tmpfsTooLarge(bytes, memory: memory))
                    } else {
                        size = bytes
                    }
                } catch {
                    report("\(path).size", n, error.message)
                }
            }
        } else {
            report(path, node, "missing size (such as size: 64MiB)")
            ok = false
        }
        guard ok, let mountPath, let size else { return nil }
        return TmpfsMount(path: mountPath, sizeBytes: size)
    }

    private mutating func decodeSeccomp(_ node: Node, into seccomp: inout SeccompPolicy) {
        guard let f = fields(of: node, at: "seccomp", known: PolicySchema.seccomp) else { return }
        if let n = f["mode"], let text = scalar(n, at: "seccomp.mode", expected: "allow_list or deny_list") {
            let names = SeccompMode.allCases.map(\.rawValue)
            if let mode = SeccompMode(rawValue: text) { seccomp.mode = mode } else {
                report("seccomp.mode", n, "expected allow_list or deny_list, got \(q(text))\(Suggestions.didYouMean(text, in: names))")
            }
        }
        if let n = f["socket_families"], let items = list(n, at: "seccomp.socket_families", expected: "address family names") {
            var families: [SocketFamily] = []
            let names = SocketFamily.allCases.map(\.rawValue)
            for (i, item) in items.enumerated() {
                let path = "seccomp.socket_families[\(i)]"
                guard let text = scalar(item, at: path, expected: "an address family name") else { continue }
                guard let family = SocketFamily(rawValue: text) else {
                    report(path, item, "unknown address family \(q(text))\(Suggestions.didYouMean(text, in: names)); expected one of "
                           + names.joined(separator: ", ") + " (others, such as vsock or packet, are never allowed)")
                    continue
                }
                if families.contains(family) { report(path, item, "\(text) is listed twice") } else { families.append(family) }
            }
            seccomp.socketFamilies = families
        }
        var kill = seccomp.action == .kill
        if let n = f["action"], let text = scalar(n, at: "seccomp.action", expected: "errno or kill") {
            switch text {
            case "errno": kill = false
            case "kill": kill = true
            default: report("seccomp.action", n, "expected errno or kill, got \(q(text))\(Suggestions.didYouMean(text, in: ["errno", "kill"]))")
            }
        }
        var errno: Int32 = 1  // EPERM
        if case .errno(let e) = seccomp.action { errno = e }
        if let n = f["errno"] {
            if kill {
                report("seccomp.errno", n, "errno applies only to action: errno (this policy's action is kill)")
            } else if let text = scalar(n, at: "seccomp.errno", expected: "an errno name such as EPERM, or a number 1…4095") {
                if let e = SyscallNames.errno(text) {
                    errno = e
                } else if text.allSatisfy({ $0.isASCII && $0.isNumber }) {
                    report("seccomp.errno", n, "an errno number must be 1…4095, got \(text)")
                } else {
                    report("seccomp.errno", n, "unknown errno \(q(text))\(Suggestions.didYouMean(text, in: SyscallNames.errnoNames)); expected a name such as EPERM, EACCES or ENOSYS, or a number 1…4095")
                }
            }
        }
        seccomp.action = kill ? .kill : .errno(errno)
        if let n = f["deny"] { seccomp.deny = syscallList(n, at: "seccomp.deny") }
        if let n = f["allow"] {
            let items = (n.isNull ? [] : (n.sequence.map(Array.init) ?? []))
            seccomp.allow = syscallList(n, at: "seccomp.allow")
            for (i, item) in items.enumerated() {
                if case .scalar(let s) = item, seccomp.deny.contains(s.string) {
                    report("seccomp.allow[\(i)]", item, "\(q(s.string)) is also in seccomp.deny; a system call cannot be both denied and allowed")
                }
            }
        }
    }

    private mutating func syscallList(_ node: Node, at path: String) -> [String] {
        guard let items = list(node, at: path, expected: "system call names") else { return [] }
        var names: [String] = []
        for (i, item) in items.enumerated() {
            let p = "\(path)[\(i)]"
            guard let text = scalar(item, at: p, expected: "a system call name") else { continue }
            guard SyscallNames.isKnown(text) else {
                report(p, item, "unknown system call \(q(text))\(Suggestions.didYouMean(text, in: SyscallNames.native))")
                continue
            }
            if names.contains(text) { report(p, item, "\(text) is listed twice") } else { names.append(text) }
        }
        return names
    }

    private mutating func decodeEnvironment(_ node: Node, into env: inout EnvironmentPolicy) {
        guard let f = fields(of: node, at: "environment", known: PolicySchema.environment) else { return }
        if let n = f["set"] {
            if n.isNull {
                env.set = [:]
            } else if case .mapping(let mapping) = n {
                var set: [String: String] = [:]
                for (key, value) in mapping {
                    guard case .scalar(let k) = key else {
                        report("environment.set", key, "variable names must be plain text, got \(describe(key))")
                        continue
                    }
                    let path = "environment.set.\(k.string)"
                    guard Self.isVariableName(k.string) else {
                        report(path, key, "\(q(k.string)) is not a valid variable name (letters, digits and _, not starting with a digit)")
                        continue
                    }
                    guard let v = scalar(value, at: path, expected: "a text (write \"\" for an empty value)") else { continue }
                    if v.contains("\0") { report(path, value, "a value cannot contain NUL"); continue }
                    set[k.string] = v
                }
                env.set = set
            } else {
                report("environment.set", n, "expected a mapping of variable names to values, got \(describe(n))")
            }
        }
        if let n = f["allow"], let items = list(n, at: "environment.allow", expected: "variable names or PREFIX_* patterns") {
            var allow: [String] = []
            for (i, item) in items.enumerated() {
                let path = "environment.allow[\(i)]"
                guard let text = scalar(item, at: path, expected: "a variable name or a PREFIX_* pattern") else { continue }
                let stem = text.hasSuffix("*") ? String(text.dropLast()) : text
                guard (text.hasSuffix("*") && stem.isEmpty) || Self.isVariableName(stem) else {
                    report(path, item, "\(q(text)) is not a variable name or a PREFIX_* pattern (letters, digits and _, not starting with a digit)")
                    continue
                }
                if allow.contains(text) { report(path, item, "\(text) is listed twice") } else { allow.append(text) }
            }
            env.allow = allow
        }
    }

    // MARK: Checks

    static func isVariableName(_ s: String) -> Bool {
        guard let first = s.utf8.first, !(first >= 48 && first <= 57) else { return false }
        return s.utf8.allSatisfy { ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
    }

    static func hostnameProblem(_ s: String) -> String? {
        let expected = "expected a hostname of letters, digits and hyphens (dot-separated labels, at most 64 characters), got \(HumanUnits.quoted(s))"
        guard !s.isEmpty, s.utf8.count <= 64 else { return expected }
        for label in s.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.utf8.count <= 63, label.first != "-", label.last != "-",
                  label.utf8.allSatisfy({ ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 })
            else { return expected }
        }
        return nil
    }

    static func tmpfsTooLarge(_ bytes: UInt64, memory: UInt64) -> String {
        let m = HumanUnits.formatBytes(memory)
        return "\(HumanUnits.formatBytes(bytes)) is larger than limits.memory (\(m)): tmpfs pages count against the memory limit, so no more than \(m) of it could ever be used; make it at most \(m) or raise the memory limit"
    }

    /// The path normalized (no `//`, `.` or trailing `/`), or nil after reporting why it is not
    /// an absolute path without `..`.
    private mutating func absolutePath(_ text: String, at path: String, node: Node) -> String? {
        guard text.hasPrefix("/") else {
            report(path, node, "expected an absolute path (starting with /), got \(q(text))")
            return nil
        }
        guard !text.contains("\0") else {
            report(path, node, "a path cannot contain NUL")
            return nil
        }
        let parts = text.split(separator: "/")
        guard !parts.contains("..") else {
            report(path, node, "\"..\" is not allowed in paths, got \(q(text))")
            return nil
        }
        return "/" + parts.filter { $0 != "." }.joined(separator: "/")
    }

    /// Refuses `/`, `/proc`, `/dev` (and below) and a target already used; records the target.
    private mutating func checkTarget(_ target: String, at path: String, node: Node, targets: inout [String: String]) -> Bool {
        func under(_ p: String) -> Bool { target == p || target.hasPrefix(p + "/") }
        if target == "/" {
            report(path, node, "cannot mount over / (the sandbox builds its own root)")
            return false
        }
        if under("/proc") {
            report(path, node, "\(q(target)) is in /proc, which the sandbox mounts itself; choose another target")
            return false
        }
        if under("/dev") {
            report(path, node, "\(q(target)) is in /dev, which the sandbox builds itself; offer device nodes with filesystem.devices")
            return false
        }
        if let other = targets[target] {
            report(path, node, "\(q(target)) is already a mount target (\(other)); each target may be mounted once")
            return false
        }
        targets[target] = path.hasSuffix(".path") || path.hasSuffix(".target") || path.hasSuffix(".source")
            ? String(path[..<path.lastIndex(of: ".")!]) : path
        return true
    }

    // MARK: Node access

    private mutating func report(_ path: String, _ node: Node?, _ message: String) {
        problems.append(PolicyProblem(keyPath: path, message: message, line: node?.mark?.line))
    }

    private func q(_ s: String) -> String { HumanUnits.quoted(s) }

    private func describe(_ node: Node) -> String {
        if node.isNull { return "nothing" }
        switch node {
        case .scalar(let s): return q(s.string)
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// The fields of a mapping after refusing unknown keys (with a suggestion). A null node is
    /// an empty mapping (`limits:` with nothing under it).
    private mutating func fields(of node: Node, at path: String, known: [String]) -> [String: Node]? {
        if node.isNull { return [:] }
        guard case .mapping(let mapping) = node else {
            let what = path.isEmpty ? "the document" : path
            report(path, node, "expected a mapping (\(what) holds keys such as \(known.prefix(3).joined(separator: ", "))), got \(describe(node))")
            return nil
        }
        let keys = KnownKeys(known)
        var result: [String: Node] = [:]
        for (key, value) in mapping {
            guard case .scalar(let k) = key, !key.isNull else {
                report(path, key, "keys must be plain names, got \(describe(key))")
                continue
            }
            let name = k.string
            if keys.contains(name) {
                result[name] = value
                continue
            }
            let keyPath = path.isEmpty ? name : "\(path).\(name)"
            var hint = keys.suggestion(for: name)
            if hint.isEmpty, let elsewhere = PolicySchema.allPaths.first(where: {
                $0 != keyPath && ($0 == name || $0.hasSuffix(".\(name)"))
            }) {
                hint = " (did you mean \(q(elsewhere))? It belongs \(elsewhere.contains(".") ? "under \(elsewhere.split(separator: ".")[0])" : "at the top level").)"
            }
            if hint.isEmpty {
                hint = "; expected one of: \(keys.list)"
            }
            report(keyPath, key, "unknown key\(hint)")
        }
        return result
    }

    /// A scalar's text; reports and returns nil for null, a list or a mapping.
    private mutating func scalar(_ node: Node, at path: String, expected: String) -> String? {
        guard case .scalar(let s) = node, !node.isNull else {
            report(path, node, "expected \(expected), got \(describe(node))")
            return nil
        }
        return s.string
    }

    /// A list's items; null is an empty list.
    private mutating func list(_ node: Node, at path: String, expected: String) -> [Node]? {
        if node.isNull { return [] }
        guard case .sequence(let seq) = node else {
            report(path, node, "expected a list of \(expected), got \(describe(node))")
            return nil
        }
        return Array(seq)
    }

    private mutating func bool(_ node: Node, at path: String) -> Bool? {
        guard let text = scalar(node, at: path, expected: "true or false") else { return nil }
        switch text {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default:
            report(path, node, "expected true or false, got \(q(text))")
            return nil
        }
    }

    private mutating func choice<T: RawRepresentable & CaseIterable>(_ node: Node, at path: String, of: T.Type) -> T?
    where T.RawValue == String {
        let options = T.allCases.map(\.rawValue)
        let expected = options.joined(separator: " or ")
        guard let text = scalar(node, at: path, expected: expected) else { return nil }
        guard let value = T(rawValue: text) else {
            report(path, node, "expected \(expected), got \(q(text))\(Suggestions.didYouMean(text, in: options))")
            return nil
        }
        return value
    }
}

extension Node {
    /// A plain `~`, `null` or empty scalar (YAML's null). Quoted `"null"` is text.
    var isNull: Bool {
        guard case .scalar(let s) = self, s.style == .plain || s.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(s.string) && s.tag.rawValue != Tag.Name.str.rawValue
    }
}
