/// A policy written from a trial run (`confine policy learn`): the base policy with exactly
/// the system calls and socket families the program used that the base refuses, each with its
/// count; what no policy key can grant (a socket family such as `AF_PACKET`, namespaces through
/// `clone`, `ioctl(TIOCSTI)`, a persona change) is listed for review, never granted.
public struct LearnedPolicy: Sendable, Equatable {
    /// The base policy, widened by what was learned.
    public var policy: Policy
    /// Every refusal the trial runs saw (merged runs added up), label → count, in first-seen order.
    public var counts: [(label: String, count: Int)]
    /// System calls added (to `allow`, or taken out of `deny`).
    public var grantedSyscalls: [String]
    /// Socket families added.
    public var grantedFamilies: [SocketFamily]
    /// What was seen and not granted, with why.
    public var notGranted: [(label: String, why: String)]
    /// Network and filesystem needs the trial runs saw (`RunResult.trialNotes`): written as
    /// comments to review, never granted.
    public var needs: [TrialNote] = []

    public static func == (a: LearnedPolicy, b: LearnedPolicy) -> Bool {
        a.policy == b.policy && a.counts.map(\.label) == b.counts.map(\.label) && a.counts.map(\.count) == b.counts.map(\.count)
    }

    /// The policy `base` becomes once it lets through what the trial runs' refusals were
    /// (`RunResult.denied` of runs with `RunRequest.learning`), counted by label.
    public init(base: Policy, refusals: [(label: String, count: Int)]) {
        var policy = base
        var counts: [(label: String, count: Int)] = []
        for (label, count) in refusals {
            if let i = counts.firstIndex(where: { $0.label == label }) { counts[i].count += count } else { counts.append((label, count)) }
        }
        var syscalls: [String] = [], families: [SocketFamily] = [], notGranted: [(String, String)] = []
        let baseDenied = Set(SeccompProgram.deniedSyscalls(base.seccomp))
        for (label, _) in counts {
            if let open = label.firstIndex(of: "("), label.hasSuffix(")") {
                let call = String(label[..<open]), argument = String(label[label.index(after: open)..<label.index(before: label.endIndex)])
                if call == "socket" || call == "socketpair",
                   let family = SocketFamily.allCases.first(where: { Self.familyName($0) == argument }) {
                    if !families.contains(family) && !policy.seccomp.socketFamilies.contains(family) { families.append(family) }
                    else if family == .netlink { notGranted.append((label, "netlink sockets other than NETLINK_ROUTE are never allowed")) }
                } else if call == "socket" || call == "socketpair" {
                    notGranted.append((label, "no policy allows the socket family \(argument) (only unix, inet, inet6, netlink)"))
                } else if call == "clone" {
                    notGranted.append((label, "clone creating namespaces: a sandbox never gets new namespaces"))
                } else {
                    notGranted.append((label, "\(call) with this argument is refused by every policy"))
                }
            } else if label == "personality" && !baseDenied.contains(label) {
                notGranted.append((label, "personality may only query or keep PER_LINUX under every policy"))
            } else if !SyscallNames.isKnown(label) {
                notGranted.append((label, "not a system call libseccomp knows by name"))
            } else {
                syscalls.append(label)
            }
        }
        for name in syscalls {
            policy.seccomp.deny.removeAll { $0 == name }
            if !SeccompProgram.permittedSyscalls(policy.seccomp).contains(name) && !policy.seccomp.allow.contains(name) {
                policy.seccomp.allow.append(name)
            }
        }
        policy.seccomp.socketFamilies += families
        self.policy = policy
        self.counts = counts
        grantedSyscalls = syscalls
        grantedFamilies = families
        self.notGranted = notGranted
    }

    static func familyName(_ family: SocketFamily) -> String {
        switch family {
        case .unix: return "AF_UNIX"
        case .inet: return "AF_INET"
        case .inet6: return "AF_INET6"
        case .netlink: return "AF_NETLINK"
        }
    }

    /// The needs an earlier learned file recorded (its `# needs: KIND DETAIL ×N` lines), for `--merge`.
    public static func recordedNeeds(in text: String) -> [TrialNote] {
        text.split(separator: "\n").compactMap { line -> TrialNote? in
            guard line.hasPrefix("# needs: "), let times = line.range(of: " ×", options: .backwards),
                  let count = Int(line[times.upperBound...]) else { return nil }
            let body = line[line.index(line.startIndex, offsetBy: 9)..<times.lowerBound]
            guard let space = body.firstIndex(of: " "), let kind = TrialNote.Kind(rawValue: String(body[..<space])) else { return nil }
            return TrialNote(kind: kind, detail: String(body[body.index(after: space)...]), count: count)
        }
    }

    /// Notes added up by kind and detail, in first-seen order.
    public static func merged(_ notes: [TrialNote]) -> [TrialNote] {
        var out: [TrialNote] = []
        for note in notes {
            if let i = out.firstIndex(where: { $0.kind == note.kind && $0.detail == note.detail }) { out[i].count += note.count }
            else { out.append(note) }
        }
        return out
    }

    /// The counts an earlier learned file recorded (its `# learned: LABEL ×N` lines), for `--merge`.
    public static func recordedCounts(in text: String) -> [(label: String, count: Int)] {
        text.split(separator: "\n").compactMap { line -> (String, Int)? in
            guard line.hasPrefix("# learned: "), let times = line.range(of: " ×", options: .backwards),
                  let count = Int(line[times.upperBound...]) else { return nil }
            return (String(line[line.index(line.startIndex, offsetBy: 11)..<times.lowerBound]), count)
        }
    }

    /// The policy file: a header saying where it came from, the counts (`# learned:` lines, read
    /// back by `--merge`), what was not granted, then the policy in the policy-file schema with
    /// each added system call commented with its count.
    public func render(header: [String]) -> String {
        var out = header.map { "# " + $0 }
        out.append("#")
        out.append("# Refused by the base policy in the trial run(s), let through and counted:")
        if counts.isEmpty { out.append("#   (nothing: the base policy refused nothing)") }
        for (label, count) in counts { out.append("# learned: \(label) ×\(count)") }
        if !notGranted.isEmpty {
            out.append("#")
            out.append("# NOT granted — review (the program may need another approach):")
            for (label, why) in notGranted { out.append("#   \(label): \(why)") }
        }
        if !needs.isEmpty {
            out.append("#")
            out.append("# Network and filesystem needs seen — review, NOT granted (network: \(policy.network.rawValue)):")
            out.append("#   connect: a connection the program tried; missing_path: a file it opened that this policy")
            out.append("#   does not bind (the host has it) — add it to filesystem.read_only only if it should see it.")
            for note in needs { out.append("# needs: \(note.kind.rawValue) \(note.detail) ×\(note.count)") }
        }
        out.append("#")
        let countOf = Dictionary(counts.map { ($0.label, $0.count) }, uniquingKeysWith: +)
        var lines = policy.renderYAML().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if let seccomp = lines.firstIndex(of: "seccomp:"),
           let allow = lines[seccomp...].firstIndex(where: { $0.hasPrefix("  allow: ") }), !policy.seccomp.allow.isEmpty {
            var block = ["  allow:"]
            for name in policy.seccomp.allow {
                let note = grantedSyscalls.contains(name) ? "  # learned: used \(countOf[name] ?? 0)× in the trial run" : ""
                block.append("    - \(Policy.yamlScalar(name))\(note)")
            }
            lines.replaceSubrange(allow...allow, with: block)
        }
        if let families = lines.firstIndex(where: { $0.hasPrefix("  socket_families: ") }), !grantedFamilies.isEmpty {
            lines[families] += "  # learned: " + grantedFamilies.map(\.rawValue).joined(separator: ", ")
        }
        return (out + lines).joined(separator: "\n")
    }
}
