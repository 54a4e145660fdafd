import Domain
import Foundation
import Logging
import Sandbox

/// How the engine runs executions: workers, queue bound, leases, output batching, retention,
/// shutdown grace, and the runtimes that turn a script type into a command in the sandbox.
public struct EngineConfiguration: Sendable {
    /// Executions running at once.
    public var workers: Int = ProcessInfo.processInfo.activeProcessorCount
    /// PENDING executions accepted at most; past it submissions are refused (HTTP 503).
    public var queueLimit: Int = 10_000
    /// The largest script accepted, in bytes.
    public var maxScriptBytes: Int = 1 << 20
    /// The most bytes of input files one execution may be given, its job's and its run's
    /// together (`max_files_bytes`).
    public var maxFilesBytes: Int = 8 << 20
    /// The most input files one execution may be given: 100, or fewer when the sandbox
    /// delivers fewer with the script (`Sandbox.maxFilesPerRun`).
    public static let maxFiles = min(100, Sandbox.maxFilesPerRun - 1)
    /// The most bytes of output files collected from one execution (`max_artifact_bytes`).
    public var maxArtifactBytes: Int = 16 << 20
    /// How long a claim holds without a heartbeat; renewed every third of it.
    public var leaseDuration: Duration = .seconds(30)
    /// Partial output reaches the store at least this often while a run writes.
    public var outputFlushInterval: Duration = .milliseconds(250)
    /// ... and as soon as this many bytes of it wait, in batches of at most twice as many.
    public var outputFlushBytes: Int = 4 << 20
    /// The most captured output of one run held in memory waiting for the store: past it, the
    /// run's output is left in its pipes until the store has caught up (the program blocks on
    /// a full pipe), so a program writing faster than the store keeps costs no more memory.
    public var outputBacklogBytes: Int = 16 << 20
    /// Keep the newest N finished executions per job (nil: no count limit).
    public var keepPerJob: Int? = nil
    /// Keep finished executions younger than this (nil: no age limit).
    public var maxAge: Duration? = nil
    /// How often retention runs.
    public var retentionInterval: Duration = .seconds(60)
    /// How late a schedule's slot may still fire with `catch_up: none` (the server was busy or
    /// just restarted); a slot later than this is missed and skipped.
    public var scheduleGrace: Duration = .seconds(60)
    /// How webhooks are delivered.
    public var webhooks = WebhookSettings()
    /// Whether this engine sends webhooks.
    public var sendsWebhooks = true
    /// Whether this engine fires schedules' slots (one node or many: a slot fires once either way).
    public var runsSchedules = true
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
    /// This engine's name in leases and the node's name among the nodes sharing a store
    /// (`node_name`: `confine serve` makes it the host name plus port by default, stable across
    /// restarts, so a restarted node recovers its own executions; `host:pid` otherwise).
    public var workerName: String = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
    /// A node whose heartbeat is older than this is dead (`node_timeout`): any live node ends
    /// its RUNNING executions as `interrupted`. Heartbeats go every sixth of it (at least 1 s apart).
    public var nodeTimeout: Duration = .seconds(30)
    /// What this node says it runs, in the nodes' table (`confine serve`: the product version,
    /// as `confine --version` prints it).
    public var nodeVersion: String = "confine"

    /// Opens a sealed secret value (jobs' secret environment) just before a sandbox starts;
    /// nil: this engine has no key, and a job with secrets fails to start, saying so.
    public var openSecret: (@Sendable (String) throws -> String)? = nil

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
