import Domain
import Foundation
import Logging

/// How the engine runs executions: workers, queue bound, leases, output batching, retention,
/// shutdown grace, and the runtimes that turn a script type into a command in the sandbox.
public struct EngineConfiguration: Sendable {
    /// Executions running at once.
    public var workers: Int = ProcessInfo.processInfo.activeProcessorCount
    /// PENDING executions accepted at most; past it submissions are refused (HTTP 503).
    public var queueLimit: Int = 10_000
    /// The largest script accepted, in bytes.
    public var maxScriptBytes: Int = 1 << 20
    /// How long a claim holds without a heartbeat; renewed every third of it.
    public var leaseDuration: Duration = .seconds(30)
    /// Partial output reaches the store at least this often while a run writes.
    public var outputFlushInterval: Duration = .milliseconds(250)
    /// ... and as soon as this many bytes of it wait, so that a fast writer's output is not
    /// held in memory for long.
    public var outputFlushBytes: Int = 4 << 20
    /// Keep the newest N finished executions per job (nil: no count limit).
    public var keepPerJob: Int? = nil
    /// Keep finished executions younger than this (nil: no age limit).
    public var maxAge: Duration? = nil
    /// How often retention runs.
    public var retentionInterval: Duration = .seconds(60)
    /// On shutdown, how long running executions may take to finish before they are
    /// interrupted.
    public var shutdownGrace: Duration = .seconds(10)
    /// Script type → how to run it.
    public var runtimes: [ScriptType: Runtime] = [
        .python: Runtime(command: ["/usr/bin/python3"], scriptPath: "/sandbox/script.py"),
        .bash: Runtime(command: ["/bin/bash"], scriptPath: "/sandbox/script.sh"),
    ]
    /// Where the engine logs: every line about an execution carries `execution_id` and
    /// `job_id`; a finished execution is one info line; store failures are warnings.
    public var logger = Logger(label: "confine.engine")
    /// This engine's name in leases (`host:pid` by default).
    public var workerName: String = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"

    public init() {}
}

/// How a script type runs: the interpreter command (absolute path inside the sandbox), to
/// which the script's path and the run's arguments are appended.
public struct Runtime: Sendable, Equatable {
    public var command: [String]
    /// Where the script is placed (read-only) inside the sandbox.
    public var scriptPath: String

    public init(command: [String], scriptPath: String) {
        self.command = command
        self.scriptPath = scriptPath
    }
}
