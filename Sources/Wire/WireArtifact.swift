/// The files collected from an execution's working directory (`ArtifactList`): each with its
/// size and SHA-256, and those that matched its `outputs` but were skipped, with why.
public struct WireArtifactList: Codable, Sendable, Equatable {
    public var files: [WireArtifact]
    public var skipped: [WireSkippedArtifact]
}

/// One collected file (`Artifact`).
public struct WireArtifact: Codable, Sendable, Equatable {
    public var path: String
    public var size: Int64
    public var sha256: String
}

/// A file that matched but was not collected (`SkippedArtifact`).
public struct WireSkippedArtifact: Codable, Sendable, Equatable {
    public var path: String
    public var reason: String
}
