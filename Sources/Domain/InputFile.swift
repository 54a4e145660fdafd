import Foundation

/// A file given with a job or a run, written into the execution's working directory before the
/// program starts: a relative, normalised path (no `..`, no `.`, no empty segment), its bytes,
/// and whether it is executable.
public struct InputFile: Sendable, Equatable, Codable {
    public var path: String
    public var content: Data
    public var executable: Bool

    public init(path: String, content: Data, executable: Bool = false) {
        self.path = path
        self.content = content
        self.executable = executable
    }

    /// What a job shows of it (not its bytes).
    public var entry: InputFileEntry { InputFileEntry(path: path, size: Int64(content.count), executable: executable) }

    /// `base` with `overrides` added; a file of `overrides` replaces the one of the same path.
    public static func merging(_ base: [InputFile], _ overrides: [InputFile]) -> [InputFile] {
        let replaced = Set(overrides.map(\.path))
        return base.filter { !replaced.contains($0.path) } + overrides
    }
}

/// A job's input file as its answers list it: path, size in bytes, executable.
public struct InputFileEntry: Sendable, Equatable, Codable {
    public var path: String
    public var size: Int64
    public var executable: Bool

    public init(path: String, size: Int64, executable: Bool) {
        self.path = path
        self.size = size
        self.executable = executable
    }
}
