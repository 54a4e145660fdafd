/// One program to run under a policy: what `Sandbox.run` takes.
public struct RunRequest: Sendable {
    /// The policy the run is confined by (already loaded and validated).
    public var policy: Policy
    /// argv. `command[0]` is resolved inside the sandbox: an absolute path, or a name looked
    /// up in the sandbox's `PATH`.
    public var command: [String]
    /// Bytes delivered on stdin, then end-of-file. nil: stdin is empty.
    public var stdin: [UInt8]?
    /// Files placed read-only into the sandbox (a script, its data).
    public var files: [SandboxFile]
    /// Files written into the program's working directory (the policy's `workdir`, a tmpfs)
    /// before it starts, at paths relative to it (`data/in.csv`): its input, beside what it
    /// writes. See `Sandbox.placeWorkingFiles`.
    public var workingFiles: [SandboxFile] = []
    /// What to collect from the working directory once the program has ended, whatever the
    /// verdict (`RunResult.artifacts`); nil: nothing. See `WorkdirCapture`.
    public var outputs: OutputCollection?
    /// Variables added to the policy's environment; each must be allowed by the policy.
    public var environment: [String: String]
    /// Tighter limits for this run only (the policy must allow each).
    public var overrides: LimitOverrides
    /// Called with each captured chunk of output as it arrives, on the run's supervisor thread.
    /// It must return quickly; it never sees bytes past a stream's cap.
    public var onOutput: (@Sendable (OutputChunk) -> Void)?
    /// Whether the captured bytes are also kept for `RunResult.stdout` / `stderr`. A caller that
    /// takes every chunk through `onOutput` (and stores it as it comes) sets false, so the run
    /// does not hold a second copy of up to a cap of output per stream: the result's byte counts
    /// and truncation flags are reported all the same, its `stdout` and `stderr` are empty.
    public var keepOutput: Bool
    /// Asked (on the supervisor thread; it must return quickly) before each wait for output:
    /// while it answers true, the program's output is left in its pipes, so the program blocks
    /// once they are full. How a consumer of `onOutput` that stores chunks slower than a
    /// program can write bounds what it holds. Only while the program runs: deadlines, limits
    /// and cancellation apply as ever, and output left when it ends is read at once.
    public var pauseOutput: (@Sendable () -> Bool)?
    /// A trial run (`confine policy learn`): every call the policy's filter would refuse is let
    /// through and recorded in `RunResult.denied` (with the action it would have had). The
    /// sandbox is otherwise the policy's: namespaces, no capabilities, its mounts and limits.
    public var learning = false

    public init(policy: Policy, command: [String], stdin: [UInt8]? = nil, files: [SandboxFile] = [],
                environment: [String: String] = [:], overrides: LimitOverrides = LimitOverrides(),
                onOutput: (@Sendable (OutputChunk) -> Void)? = nil, keepOutput: Bool = true,
                pauseOutput: (@Sendable () -> Bool)? = nil) {
        self.policy = policy
        self.command = command
        self.stdin = stdin
        self.files = files
        self.environment = environment
        self.overrides = overrides
        self.onOutput = onOutput
        self.keepOutput = keepOutput
        self.pauseOutput = pauseOutput
    }
}

/// A file that reaches the sandbox read-only (backed by a sealed memfd: nothing is written to
/// the host's disk, nothing is left behind).
public struct SandboxFile: Sendable, Equatable {
    /// Absolute path inside the sandbox.
    public var path: String
    public var contents: [UInt8]
    public var executable: Bool

    public init(path: String, contents: [UInt8], executable: Bool = false) {
        self.path = path
        self.contents = contents
        self.executable = executable
    }
}

/// Which output stream a chunk came from.
public enum OutputStreamName: String, Sendable, Codable {
    case stdout, stderr
}

/// A piece of captured output, in order within its stream.
public struct OutputChunk: Sendable, Equatable {
    public var stream: OutputStreamName
    /// Offset of the first byte within the stream.
    public var offset: UInt64
    public var bytes: [UInt8]

    public init(stream: OutputStreamName, offset: UInt64, bytes: [UInt8]) {
        self.stream = stream
        self.offset = offset
        self.bytes = bytes
    }
}

/// Files to collect from the working directory after a run: glob patterns relative to it
/// (`result.json`, `plots/*.png`; `*` does not cross `/`), and the most bytes in all.
public struct OutputCollection: Sendable, Equatable {
    public var patterns: [String]
    public var maxBytes: Int

    public init(patterns: [String], maxBytes: Int) {
        self.patterns = patterns
        self.maxBytes = maxBytes
    }
}
