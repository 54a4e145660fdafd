/// The files collected from an execution's working directory (`ArtifactList`): each with its
/// size and SHA-256, and those that matched its `outputs` but were skipped, with why.
public struct WireArtifactList: Codable, Sendable, Equatable {
    public var files: [WireArtifact]
    public var skipped: [WireSkippedArtifact]

    public init(files: [WireArtifact], skipped: [WireSkippedArtifact]) {
        self.files = files
        self.skipped = skipped
    }
}

/// One collected file (`Artifact`).
public struct WireArtifact: Codable, Sendable, Equatable {
    public var path: String
    public var size: Int64
    public var sha256: String

    public init(path: String, size: Int64, sha256: String) {
        self.path = path
        self.size = size
        self.sha256 = sha256
    }
}

/// A file that matched but was not collected (`SkippedArtifact`).
public struct WireSkippedArtifact: Codable, Sendable, Equatable {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}
