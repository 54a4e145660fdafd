import Credentials
import Domain
import Foundation
import Sandbox
import Store

extension ExecutionVerdict {
    /// The service's word for a sandbox's verdict: one case for each, so that a verdict added
    /// to the sandbox does not compile until the service says what it means.
    public init(_ verdict: RunVerdict) {
        switch verdict {
        case .exited: self = .exited
        case .signaled: self = .signaled
        case .wallTimeout: self = .wallTimeout
        case .cpuTimeout: self = .cpuTimeout
        case .memoryLimit: self = .memoryLimit
        case .outputLimit: self = .outputLimit
        case .setupFailed: self = .setupFailed
        case .cancelled: self = .cancelled
        }
    }
}

extension ExecutionOutcome {
    /// The store's record of a sandbox result (its output, if the sandbox kept any). A run the
    /// server's shutdown cancelled (`interrupted`) ends as `interrupted`, not `cancelled`.
    public init(_ result: RunResult, interrupted: Bool, finishedAt: Date = Date()) {
        let verdict: ExecutionVerdict = interrupted ? .interrupted : ExecutionVerdict(result.verdict)
        self.init(
            verdict: verdict, exitCode: result.exitCode, signal: result.signal,
            reason: interrupted ? "the server shut down while this execution ran" : result.setupFailure?.description,
            stdout: Data(result.stdout), stderr: Data(result.stderr),
            stdoutBytes: Int64(result.stdoutBytes), stderrBytes: Int64(result.stderrBytes),
            stdoutTruncated: result.stdoutTruncated, stderrTruncated: result.stderrTruncated,
            usage: ResourceUsage(wallMs: result.wallMs, cpuMs: result.cpuMs, memoryPeakBytes: result.memoryPeakBytes.map { Int64($0) }),
            finishedAt: finishedAt)
        artifacts = result.artifacts.map { file in
            CollectedArtifact(artifact: Artifact(path: file.path, size: Int64(file.contents.count), sha256: Digest.sha256Hex(file.contents)),
                              content: Data(file.contents))
        }
        skippedArtifacts = result.skippedArtifacts.map { SkippedArtifact(path: $0.path, reason: $0.reason) }
        denied = result.denied?.map { DeniedSyscall(syscall: $0.syscall, count: $0.count, action: $0.action.rawValue, firstAtMs: $0.firstAtMs) }
    }
}
