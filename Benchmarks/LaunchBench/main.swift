// Launch cost of one sandboxed program against bare fork+exec, measured in the same run,
// interleaved (each round runs every variant once, in turn), back to back and spaced 20 ms
// apart. Prints medians and ratios; asserts nothing (machines here are shared and noisy).
import Foundation
import Glibc
import Sandbox

let rounds = Int(ProcessInfo.processInfo.environment["BENCH_ROUNDS"] ?? "") ?? 200
let policiesDir = ProcessInfo.processInfo.environment["CONFINE_POLICIES"] ?? "policies"
/// The value, or what went wrong in words and exit status 1: a benchmark that cannot start
/// says why, not with a crash report.
func orExit<T>(_ what: String, _ body: () throws -> T) -> T {
    do { return try body() } catch {
        FileHandle.standardError.write(Data("confine-bench: \(what): \(error)\n".utf8))
        exit(1)
    }
}
let policy = orExit("loading the default policy (run from the repository, or set CONFINE_POLICIES to the policies' folder)") {
    try PolicyLoader.load(file: policiesDir + "/default.yaml")
}
let sandbox = orExit("starting the sandbox") { try Sandbox() }
var coldConfiguration = SandboxConfiguration()
coldConfiguration.warmPoolSize = 0
let coldSandbox = orExit("starting the sandbox without a warm pool") { try Sandbox(configuration: coldConfiguration) }
// The same warm launch with refusals unreported (the filter answers them itself, no listener
// handed up): what reporting refusals costs a run that refuses nothing.
var unreportedConfiguration = SandboxConfiguration()
unreportedConfiguration.reportRefusals = false
let unreportedSandbox = orExit("starting the sandbox with refusals unreported") { try Sandbox(configuration: unreportedConfiguration) }

/// Wall time of one posix_spawn + waitpid of argv (the minimum a launcher can cost).
func spawnAndWait(_ argv: [String]) -> Double {
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) } }
    var devnull = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&devnull)
    posix_spawn_file_actions_addopen(&devnull, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&devnull, 2, "/dev/null", O_WRONLY, 0)
    defer { posix_spawn_file_actions_destroy(&devnull) }
    let start = DispatchTime.now().uptimeNanoseconds
    var pid: pid_t = 0
    guard posix_spawn(&pid, cArgs[0]!, &devnull, nil, cArgs, environ) == 0 else { return .nan }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
}

func timed(_ body: () async throws -> Void) async rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try await body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
}

func which(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let path = "\(dir)/\(name)"
        if access(path, X_OK) == 0 { return path }
    }
    return nil
}

struct Variant {
    var name: String
    var run: () async throws -> Double
}

func variants(payload: [String]) -> [Variant] {
    var list: [Variant] = [
        Variant(name: "bare fork+exec (posix_spawn)") { spawnAndWait(payload) },
        Variant(name: "Confine, no isolation (same supervisor)") {
            await timed { _ = await sandbox.runBare(command: payload, policy: policy) }
        },
        Variant(name: "Confine, full isolation (warm pool)") {
            try await timed {
                let r = try await sandbox.run(RunRequest(policy: policy, command: payload))
                precondition(r.verdict == .exited && r.exitCode == 0, "sandboxed run failed: \(r.summary)")
            }
        },
        Variant(name: "Confine, warm, refusals unreported") {
            try await timed {
                let r = try await unreportedSandbox.run(RunRequest(policy: policy, command: payload))
                precondition(r.verdict == .exited && r.exitCode == 0, "sandboxed run failed: \(r.summary)")
            }
        },
        Variant(name: "Confine, full isolation (cold, no pool)") {
            try await timed {
                let r = try await coldSandbox.run(RunRequest(policy: policy, command: payload))
                precondition(r.verdict == .exited && r.exitCode == 0, "sandboxed run failed: \(r.summary)")
            }
        },
    ]
    if let bwrap = which("bwrap") {
        let args = [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
                    "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev",
                    "--tmpfs", "/tmp", "--"] + payload
        list.append(Variant(name: "bwrap --unshare-all") { spawnAndWait(args) })
    }
    if let nsjail = which("nsjail") {
        let args = [nsjail, "-Mo", "--quiet", "-R", "/usr", "-R", "/bin", "-R", "/lib", "-R", "/lib64", "--"] + payload
        list.append(Variant(name: "nsjail -Mo") { spawnAndWait(args) })
    }
    // BENCH_VARIANTS=warm,cold: only the variants whose names hold one of these words (the
    // baseline always runs: every ratio is against it).
    if let only = ProcessInfo.processInfo.environment["BENCH_VARIANTS"]?.split(separator: ","), !only.isEmpty {
        list = [list[0]] + list.dropFirst().filter { v in only.contains { v.name.lowercased().contains($0.lowercased()) } }
    }
    return list
}

func median(_ xs: [Double]) -> Double {
    let s = xs.filter { !$0.isNaN }.sorted()
    return s.isEmpty ? .nan : s[s.count / 2]
}

func fmt(_ x: Double) -> String { String(format: "%7.3f", x) }

print("Confine launch benchmark — \(rounds) interleaved rounds per mode; medians in ms")
print("(ratio: against bare fork+exec measured in the same rounds)")
let payloads = [["/bin/true"], ["/bin/bash", "-c", "true"]].filter { payload in
    (ProcessInfo.processInfo.environment["BENCH_PAYLOAD"]).map { payload[0].hasSuffix($0) } ?? true
}
let modes = [("back to back", 0), ("spaced 20 ms", 20)].filter { mode in
    (ProcessInfo.processInfo.environment["BENCH_GAP_MS"]).map { $0 == String(mode.1) } ?? true
}
for payload in payloads {
    for (mode, gapMs) in modes {
        let list = variants(payload: payload)
        var samples = Array(repeating: [Double](), count: list.count)
        for _ in 0..<3 { for v in list { _ = try await v.run() } }  // warm-up
        for _ in 0..<rounds {
            for (i, v) in list.enumerated() {
                samples[i].append(try await v.run())
                if gapMs > 0 { usleep(useconds_t(gapMs * 1000)) }
            }
        }
        let base = median(samples[0])
        print("\n\(payload.joined(separator: " ")) — \(mode)")
        for (i, v) in list.enumerated() {
            let m = median(samples[i])
            print("  \(v.name.padding(toLength: 42, withPad: " ", startingAt: 0)) \(fmt(m)) ms   ×\(String(format: "%.2f", m / base))")
        }
    }
}
let engineCount = Int(ProcessInfo.processInfo.environment["BENCH_EXECUTIONS"] ?? "") ?? 1000
if engineCount > 0 {
    let policies = orExit("loading the policies of \(policiesDir)") { try PolicySet.load(directory: policiesDir) }
    try await EngineBench.run(count: engineCount, policies: policies)
}

if which("bwrap") == nil { print("\n(bwrap not installed: `apt-get install bubblewrap` to compare)") }
if which("nsjail") == nil { print("(nsjail not installed: not in Debian 12's archive; build it to compare)") }
