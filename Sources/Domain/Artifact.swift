import Foundation

/// A file an execution left in its working directory that matched its `outputs`, collected
/// after it ended: its path relative to the working directory, size and SHA-256 (hex).
public struct Artifact: Sendable, Equatable, Codable {
    public var path: String
    public var size: Int64
    public var sha256: String

    public init(path: String, size: Int64, sha256: String) {
        self.path = path
        self.size = size
        self.sha256 = sha256
    }
}

/// A file that matched an execution's `outputs` but was not collected, and why.
public struct SkippedArtifact: Sendable, Equatable, Codable {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}
