// End-to-end throughput through the engine (no HTTP): N trivial executions enqueued at once,
// time until all are finished, beside the sandbox-only launch rate at the same parallelism
// measured in the same run, so that the engine's own overhead shows as a ratio.
import Domain
import Engine
import Foundation
import Sandbox
import Store

enum EngineBench {
    static func run(count: Int, policies: PolicySet) async throws {
        let workers = ProcessInfo.processInfo.activeProcessorCount
        print("\nEngine throughput — \(count) executions enqueued at once, \(workers) workers")
        for (type, script, command) in [(ScriptType.bash, "true", ["/bin/bash", "-c", "true"]),
                                        (ScriptType.python, "pass", ["/usr/bin/python3", "-c", "pass"])] {
            let sandboxRate = try await sandboxOnly(command: command, count: count, parallel: workers, policies: policies)
            let engineRate = try await throughEngine(type: type, script: script, count: count, workers: workers, policies: policies)
            let overhead = (sandboxRate / engineRate - 1) * 100
            print("  \(type.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)) sandbox only \(fmt(sandboxRate)) runs/s   engine \(fmt(engineRate)) executions/s   engine overhead \(String(format: "%+.1f", overhead))%")
        }
    }

    static func fmt(_ x: Double) -> String { String(format: "%7.1f", x) }

    /// Launches at `parallel` at a time straight through the sandbox.
    static func sandboxOnly(command: [String], count: Int, parallel: Int, policies: PolicySet) async throws -> Double {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let policy = try policies.policy(named: "default")
        let start = DispatchTime.now().uptimeNanoseconds
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func add() {
                guard next < count else { return }
                next += 1
                group.addTask {
                    let r = try await sandbox.run(RunRequest(policy: policy, command: command))
                    precondition(r.verdict == .exited, "sandboxed run failed: \(r.summary)")
                }
            }
            for _ in 0..<parallel { add() }
            while try await group.next() != nil { add() }
        }
        return Double(count) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    static func throughEngine(type: ScriptType, script: String, count: Int, workers: Int, policies: PolicySet) async throws -> Double {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("confine-bench-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteStore(path: folder.appendingPathComponent("bench.sqlite").path)
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        var configuration = EngineConfiguration()
        configuration.workers = workers
        configuration.logger.logLevel = .warning  // not a line per execution while timing
        let engine = Engine(store: store, sandbox: sandbox, policies: policies, configuration: configuration)
        let job = try await store.createJob(NewJob(name: "bench", scriptType: type, scriptContent: script, concurrency: .allow))
        // Enqueued before the workers start, so that the clock measures the engine serving them.
        for _ in 0..<count { _ = try await engine.submit(jobID: job.id) }
        let start = DispatchTime.now().uptimeNanoseconds
        try await engine.start()
        // Polled every 20 ms with a cheap query, so that watching costs the machine nothing.
        while true {
            let pending = try await store.pendingCount()
            let running = try await store.executions(ExecutionQuery(statuses: [.running], limit: 1)).executions
            if pending == 0 && running.isEmpty { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let failed = try await store.executions(ExecutionQuery(statuses: [.failed, .timedOut, .cancelled], limit: 1)).executions
        precondition(failed.isEmpty, "an execution failed: \(failed)")
        await engine.shutdown()
        return Double(count) / elapsed
    }
}
