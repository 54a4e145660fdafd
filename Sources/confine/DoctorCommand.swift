import API
import ArgumentParser
import Domain
import Engine
import Foundation
import Glibc
import HumanText
import Sandbox
import Store

/// `confine doctor`: checks that this host can run Confine — kernel, user namespaces, cgroups,
/// seccomp, privileges, policies, runtimes (each tried in a real sandbox) and the database's
/// folder — and names the fix of everything missing.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check that this host can run Confine, and say how to fix what it lacks.",
        discussion: """
            Prints one line per check: ok, MISSING (required; the line names the fix) or WARN \
            (works, with a caveat). The configuration is found as by `confine serve`: --config, \
            then CONFINE_* variables. Each runtime's interpreter is run with --version in a real \
            sandbox under the default policy.

            Exit status: 0 when everything required is there (warnings do not count), 1 otherwise.
            """
    )

    @Option(name: .long, help: "A YAML configuration file (as for `confine serve`).")
    var config: String?

    @Option(name: .long, help: ArgumentHelp("The database to check (as for `confine serve`): a SQLite file or a postgres:// URL.", valueName: "PATH|URL"))
    var database: String?

    @Flag(name: .long, help: "Print one JSON object: {\"checks\": [{name, status, detail, fix}], \"ok\": bool}.")
    var json = false

    func run() async throws {
        let checks = await Doctor(configFile: config, database: database).checks()
        let ok = !checks.contains { $0.status == .missing }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(DoctorReport(checks: checks, ok: ok)), as: UTF8.self))
        } else {
            let width = max(16, (checks.map(\.name.count).max() ?? 0) + 2)
            for check in checks {
                var line = check.status.label.padding(toLength: 9, withPad: " ", startingAt: 0)
                    + check.name.padding(toLength: width, withPad: " ", startingAt: 0) + check.detail
                if let fix = check.fix { line += " — fix: \(fix)" }
                print(line)
            }
        }
        if !ok { throw ExitCode(1) }
    }
}

/// The outcome of one check of `confine doctor`.
struct DoctorCheck: Encodable, Sendable {
    /// How a check came out.
    enum Status: String, Encodable, Sendable {
        case ok
        /// Something required is missing: Confine cannot run (exit 1).
        case missing
        /// Works, with a caveat an operator should know.
        case warn

        var label: String {
            switch self {
            case .ok: return "ok"
            case .missing: return "MISSING"
            case .warn: return "WARN"
            }
        }
    }

    var name: String
    var status: Status
    var detail: String
    /// What to do about it (nil for ok).
    var fix: String?

    static func ok(_ name: String, _ detail: String) -> DoctorCheck { DoctorCheck(name: name, status: .ok, detail: detail) }
    static func missing(_ name: String, _ detail: String, fix: String) -> DoctorCheck {
        DoctorCheck(name: name, status: .missing, detail: detail, fix: fix)
    }
    static func warn(_ name: String, _ detail: String, fix: String? = nil) -> DoctorCheck {
        DoctorCheck(name: name, status: .warn, detail: detail, fix: fix)
    }

    enum Keys: String, CodingKey { case name, status, detail, fix }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(name, forKey: .name)
        try c.encode(status.rawValue, forKey: .status)
        try c.encode(detail, forKey: .detail)
        try c.encode(fix, forKey: .fix)
    }
}

/// What `confine doctor --json` prints.
struct DoctorReport: Encodable {
    var checks: [DoctorCheck]
    var ok: Bool
}

/// The checks themselves, in the order they are printed.
struct Doctor {
    var configFile: String?
    /// `--database`, over the configuration's.
    var database: String?

    func checks() async -> [DoctorCheck] {
        var checks: [DoctorCheck] = [kernel(), privileges(), userNamespaces()]
        var environment = ProcessInfo.processInfo.environment
        if let database { environment["CONFINE_DATABASE"] = database }

        var configuration = ServerConfiguration()
        if let configFile {
            do {
                configuration = try ServerConfiguration.load(file: configFile, environment: environment)
                checks.append(.ok("configuration", configFile))
            } catch {
                checks.append(.missing("configuration", error.description, fix: "correct \(configFile) (see `confine serve --help` for its keys)"))
            }
        } else {
            do {
                configuration = try ServerConfiguration.load(file: nil, environment: environment)
            } catch {
                checks.append(.missing("configuration", error.description, fix: "correct or unset that CONFINE_* variable"))
            }
        }
        if configFile == nil, ProcessInfo.processInfo.environment["CONFINE_POLICIES"] == nil {
            configuration.policies = PolicyDirectory.locate()
        }

        checks.append(cgroupHierarchy())
        var sandboxConfiguration = configuration.sandbox
        sandboxConfiguration.warmPoolSize = 0
        let sandbox: Sandbox?
        do {
            let made = try Sandbox(configuration: sandboxConfiguration)
            sandbox = made
            checks.append(cgroupParent(made))
            let spawner = made.spawnerStatus
            checks.append(.ok("spawner", "\(spawner.path) (pid \(spawner.pid ?? 0)) runs as uid \(sandboxConfiguration.spawnerUID) "
                              + "and creates every sandbox's namespaces; inits are \(made.cgroupPlacement)"))
        } catch {
            sandbox = nil
            if case .spawner(let failure) = error {
                checks.append(.missing("spawner", failure.description,
                                       fix: "build confine-spawner beside confine (make build) or set spawner_path; let unprivileged "
                                           + "users create user namespaces (sysctl user.max_user_namespaces > 0)"))
            } else if case .configuration(let message) = error {
                checks.append(.missing("spawner", message, fix: "correct spawner_uid / spawner_gid"))
            } else {
                checks.append(.missing("cgroup parent", error.description,
                                       fix: geteuid() == 0 ? "mount the cgroup controllers (see the cgroups line)"
                                           : "run as root, or delegate a cgroup v2 subtree to this user (systemd-run --user -p Delegate=yes …)"))
            }
        }

        let (policyCheck, policies) = loadPolicies(configuration.policies)
        checks.append(seccomp(policies?["default"]))
        checks.append(policyCheck)
        for type in configuration.engine.runtimes.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
            guard let runtime = configuration.engine.runtimes[type] else { continue }
            checks.append(await self.runtime(type.rawValue, runtime, policy: policies?["default"], sandbox: sandbox))
        }
        switch configuration.databaseLocation {
        case .sqlite(let path): checks.append(databaseFolder(path))
        case .postgres(let address): checks.append(await postgres(address))
        }
        return checks
    }

    // MARK: Host

    func kernel() -> DoctorCheck {
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: names.release) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        let version = numbers.count == 2 ? (numbers[0], numbers[1]) : (0, 0)
        if version < (5, 3) {
            return .missing("kernel", "Linux \(release); Confine needs 5.3 or later (pidfd_open, clone3)",
                            fix: "upgrade the kernel to Linux 5.3 or later")
        }
        return .ok("kernel", "Linux \(release)")
    }

    func privileges() -> DoctorCheck {
        let uid = geteuid()
        if uid == 0 { return .ok("privileges", "running as root") }
        return .warn("privileges", "running as uid \(uid), not root: sandboxes need a cgroup subtree this user may write and user namespaces",
                     fix: "run as root, or delegate a cgroup v2 subtree to this user (systemd-run --user -p Delegate=yes …)")
    }

    func userNamespaces() -> DoctorCheck {
        let name = "user namespaces"
        let maxNamespaces = Self.readInt("/proc/sys/user/max_user_namespaces")
        if maxNamespaces == 0 {
            return .missing(name, "user.max_user_namespaces is 0", fix: "sysctl -w user.max_user_namespaces=15000")
        }
        if geteuid() != 0, Self.readInt("/proc/sys/kernel/unprivileged_userns_clone") == 0 {
            return .missing(name, "kernel.unprivileged_userns_clone is 0 and this is not root",
                            fix: "sysctl -w kernel.unprivileged_userns_clone=1, or run as root")
        }
        // Try it: a forked child (running only the C shim's code) unshares a user namespace.
        let code = HostProbe.userNamespaceErrno()
        if code != 0 {
            var fix = "sysctl -w user.max_user_namespaces=15000"
            if Self.readInt("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == 1 && geteuid() != 0 {
                fix = "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or run as root"
            }
            return .missing(name, "unshare(CLONE_NEWUSER) fails: \(ErrnoName.describe(code))", fix: fix)
        }
        return .ok(name, "unshare(CLONE_NEWUSER) works" + (maxNamespaces.map { "; user.max_user_namespaces \($0)" } ?? ""))
    }

    /// The hierarchy `CgroupDetection` would pick, read from /proc/self/mountinfo.
    func cgroupHierarchy() -> DoctorCheck {
        let name = "cgroups"
        var v2: String?
        var v1: [String: String] = [:]
        for line in (Self.read("/proc/self/mountinfo") ?? "").split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " "), right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 3 else { continue }
            let mountPoint = String(left[4])
            if right[0] == "cgroup2", v2 == nil || mountPoint == "/sys/fs/cgroup" {
                v2 = mountPoint
            } else if right[0] == "cgroup" {
                for option in right[2].split(separator: ",") where v1[String(option)] == nil { v1[String(option)] = mountPoint }
            }
        }
        let neededV2 = ["cpu", "memory", "pids"]
        var v2Controllers: Set<String> = []
        if let v2 {
            v2Controllers = Set((Self.read(v2 + "/cgroup.controllers") ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
            if v2Controllers.isSuperset(of: neededV2) {
                return .ok(name, "v2 at \(v2), controllers \(neededV2.joined(separator: ", ")) available")
            }
        }
        let neededV1 = ["memory", "pids", "cpu", "cpuacct"]
        let missingV1 = neededV1.filter { v1[$0] == nil }
        if missingV1.isEmpty {
            let roots = Set(neededV1.compactMap { v1[$0].map { URL(fileURLWithPath: $0).deletingLastPathComponent().path } })
            return .ok(name, "v1, controllers \(neededV1.joined(separator: ", ")) mounted (under \(roots.sorted().joined(separator: ", ")))")
        }
        if let v2 {
            let lacking = neededV2.filter { !v2Controllers.contains($0) }
            return .missing(name, "cgroup v2 at \(v2) lacks the controller(s) \(lacking.joined(separator: ", ")); no complete v1 mounts either",
                            fix: "enable them: echo '+\(lacking.joined(separator: " +"))' > \(v2)/cgroup.subtree_control (memory may need the boot option cgroup_enable=memory)")
        }
        if !v1.isEmpty {
            return .missing(name, "cgroup v1 without the controller(s) \(missingV1.joined(separator: ", "))",
                            fix: "mount them (mount -t cgroup -o \(missingV1.joined(separator: ",")) cgroup /sys/fs/cgroup/\(missingV1[0])), or mount cgroup2")
        }
        return .missing(name, "no cgroup hierarchy is mounted", fix: "mount cgroup2: mount -t cgroup2 none /sys/fs/cgroup")
    }

    /// Confine's parent cgroup (created by `Sandbox` as `confine serve` would) and whether it is writable.
    func cgroupParent(_ sandbox: Sandbox) -> DoctorCheck {
        let name = "cgroup parent"
        guard let cgroups = sandbox.cgroups else { return .warn(name, "cgroups disabled: runs have no memory, pids or CPU limits") }
        let unwritable = cgroups.baseDirectories.filter { access($0, W_OK) != 0 }
        if !unwritable.isEmpty {
            return .missing(name, "\(unwritable.joined(separator: ", ")) not writable",
                            fix: "run as root, or delegate a cgroup v2 subtree to this user (systemd-run --user -p Delegate=yes …)")
        }
        var detail = "\(cgroups.version.rawValue): \(Self.compact(cgroups.baseDirectories)) writable"
        if cgroups.version == .v2, let own = CgroupV2Delegation.ownPath(Self.read("/proc/self/cgroup") ?? "") {
            detail += own.hasSuffix("/" + CgroupV2Delegation.serverLeaf)
                ? " (delegated: this process moved itself into \(own))" : " (this process in \(own))"
        }
        return .ok(name, detail)
    }

    func seccomp(_ policy: Policy?) -> DoctorCheck {
        let name = "seccomp"
        let status = Self.read("/proc/self/status") ?? ""
        guard status.contains("\nSeccomp:") else {
            return .missing(name, "/proc/self/status has no Seccomp: line (kernel without CONFIG_SECCOMP)",
                            fix: "use a kernel built with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER")
        }
        let actions = Set((Self.read("/proc/sys/kernel/seccomp/actions_avail") ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
        let lacking = ["errno", "kill_process"].filter { !actions.isEmpty && !actions.contains($0) }
        if !lacking.isEmpty {
            return .missing(name, "the kernel lacks the seccomp action(s) \(lacking.joined(separator: ", "))",
                            fix: "upgrade the kernel (kill_process needs Linux 4.14)")
        }
        do {
            _ = try SeccompProgram.compile(policy?.seccomp ?? SeccompPolicy())
        } catch {
            return .missing(name, "libseccomp cannot build the filter: \(error.description)", fix: "apt-get install libseccomp2")
        }
        return .ok(name, "filter mode available; libseccomp builds the \(policy == nil ? "built-in" : "default policy's") filter")
    }

    // MARK: Confine

    func loadPolicies(_ directory: String) -> (DoctorCheck, PolicySet?) {
        let name = "policies"
        let set: PolicySet
        do { set = try PolicySet.load(directory: directory) } catch {
            return (.missing(name, "\(directory): \(error.description)", fix: "correct the file(s) named; check each with `confine policy check FILE`"), nil)
        }
        guard set["default"] != nil else {
            return (.missing(name, "\(directory) has no default.yaml (loaded: \(set.names.isEmpty ? "none" : set.names.joined(separator: ", ")))",
                             fix: "add \(directory)/default.yaml, or point --config policies / CONFINE_POLICIES at the shipped policies folder"), set)
        }
        return (.ok(name, "\(set.names.joined(separator: ", ")) (from \(directory))"), set)
    }

    /// The interpreter exists where the default policy binds it from, and runs in a sandbox.
    func runtime(_ type: String, _ runtime: Runtime, policy: Policy?, sandbox: Sandbox?) async -> DoctorCheck {
        let name = "runtime \(type)"
        guard let interpreter = runtime.command.first else { return .missing(name, "no command configured", fix: "set runtimes.\(type).command") }
        let package = Self.packageGuess(interpreter)
        guard let policy else {
            return .warn(name, "\(interpreter): not checked (no default policy; see the policies line)")
        }
        guard let bind = policy.filesystem.readOnly
            .filter({ interpreter == $0.target || interpreter.hasPrefix($0.target.hasSuffix("/") ? $0.target : $0.target + "/") })
            .max(by: { $0.target.count < $1.target.count }) else {
            return .missing(name, "\(interpreter) is not under any read-only path of the default policy",
                            fix: "add its folder to filesystem.read_only of \(policy.name).yaml, or configure runtimes.\(type).command with an interpreter under /usr or /bin")
        }
        let hostPath = bind.source + String(interpreter.dropFirst(bind.target.count))
        guard access(hostPath, X_OK) == 0 else {
            return .missing(name, "\(hostPath): \(ErrnoName.describe(errno))", fix: "apt-get install \(package)")
        }
        guard let sandbox else {
            return .warn(name, "\(hostPath) exists; not tried in a sandbox (none can be built here: see the cgroup lines)")
        }
        let request = RunRequest(policy: policy, command: [interpreter, "--version"])
        let result: RunResult
        do { result = try await sandbox.run(request) } catch {
            return .missing(name, "\(interpreter) --version in a sandbox: \(error.description)", fix: "correct the default policy")
        }
        let said = Self.firstLine(result.stdout) ?? Self.firstLine(result.stderr)
        switch result.verdict {
        case .exited where result.exitCode == 0:
            return .ok(name, "\(interpreter)\(said.map { " (\($0))" } ?? "") ran in a sandbox in \(result.wallMs) ms")
        case .setupFailed:
            return .missing(name, "\(interpreter) --version in a sandbox: setup failed: \(result.setupFailure?.description ?? "unknown")",
                            fix: "see the lines above; `confine run -- \(interpreter) --version` reproduces it")
        default:
            return .missing(name, "\(interpreter) --version in a sandbox: \(result.summary)\(said.map { ": \($0)" } ?? "")",
                            fix: "make sure \(hostPath) and its libraries are under the default policy's read-only paths; `confine run -- \(interpreter) --version` reproduces it")
        }
    }

    /// A PostgreSQL database: reachable, at a schema this build can use, and a clock close to
    /// this host's (heartbeats are compared across nodes).
    func postgres(_ address: PostgresAddress) async -> DoctorCheck {
        let name = "database"
        let found: PostgresInspection
        do {
            found = try await PostgresInspection.inspect(address)
        } catch {
            return .missing(name, "\(error)", fix: "start PostgreSQL or correct database (CONFINE_DATABASE): the host, port, user, password (PGPASSWORD is not read; put it in the URL) and database name")
        }
        let known = StoreSchema.latest
        if !found.unknownVersions.isEmpty {
            return .missing(name, "\(address): schema version \(found.unknownVersions.last!), written by a newer Confine; this one knows up to \(known)",
                            fix: "run the newer Confine on this node")
        }
        let schema = found.schemaVersion.map { "schema \($0)" + ($0 == known ? "" : " (migrated to \(known) at the next start)") }
            ?? "empty (the first node's start creates the schema \(known))"
        let skew = "clock skew \(found.clockSkewMs) ms (round trip \(found.roundTripMs) ms)"
        let detail = "\(address): PostgreSQL \(found.serverVersion), \(schema), \(skew)"
        if abs(found.clockSkewMs) > 1000 {
            return .warn(name, detail, fix: "synchronize this host's clock (chrony or systemd-timesyncd): nodes judge each other's heartbeats against node_timeout")
        }
        return .ok(name, detail)
    }

    /// The database's folder (or its nearest existing ancestor, where SQLiteStore would create it) is writable.
    func databaseFolder(_ path: String) -> DoctorCheck {
        let name = "database"
        var info = stat()
        if stat(path, &info) == 0 {
            if (info.st_mode & S_IFMT) != S_IFREG {
                return .missing(name, "\(path) exists and is not a file", fix: "point database (CONFINE_DATABASE) at a file path")
            }
            if access(path, R_OK | W_OK) != 0 {
                return .missing(name, "\(path): \(ErrnoName.describe(errno))", fix: "chown or chmod \(path) for the user that runs confine serve")
            }
        }
        var folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        var missing = false
        while access(folder.path, F_OK) != 0 && folder.path != "/" {
            missing = true
            folder.deleteLastPathComponent()
        }
        guard access(folder.path, W_OK) == 0 else {
            return .missing(name, "\(folder.path) is not writable (\(ErrnoName.describe(errno))); SQLite writes its journal beside \(path)",
                            fix: "chown or chmod \(folder.path), or set database (CONFINE_DATABASE) to a writable place")
        }
        if stat(path, &info) == 0 {
            return .ok(name, "\(path) (\(String(format: "%.1f MiB", Double(info.st_size) / Double(1 << 20)))), folder writable")
        }
        return .ok(name, "\(path) (to be created\(missing ? " with its folder under \(folder.path)" : "")), folder writable")
    }

    // MARK: Helpers

    static func read(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    static func readInt(_ path: String) -> Int? {
        read(path).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// "/sys/fs/cgroup/{cpu,memory}/confine" for directories that differ in one component only.
    static func compact(_ dirs: [String]) -> String {
        let split = dirs.map { $0.split(separator: "/", omittingEmptySubsequences: false).map(String.init) }
        guard dirs.count > 1, let first = split.first, split.allSatisfy({ $0.count == first.count }) else {
            return dirs.joined(separator: ", ")
        }
        let differing = first.indices.filter { i in split.contains { $0[i] != first[i] } }
        guard differing.count == 1, let i = differing.first else { return dirs.joined(separator: ", ") }
        var parts = first
        parts[i] = "{" + split.map { $0[i] }.joined(separator: ",") + "}"
        return parts.joined(separator: "/")
    }

    static func firstLine(_ bytes: [UInt8]) -> String? {
        let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) }
        return line.flatMap { $0.isEmpty ? nil : String($0.prefix(80)) }
    }

    /// The Debian package that usually provides an interpreter: python3.11 → python3.11, ruby → ruby.
    static func packageGuess(_ interpreter: String) -> String {
        let base = URL(fileURLWithPath: interpreter).lastPathComponent
        return ["sh": "dash", "python": "python3"][base] ?? base
    }
}
