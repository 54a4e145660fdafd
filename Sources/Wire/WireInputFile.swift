/// An input file of a job or a run (`InputFile`): written into the execution's working
/// directory before the program starts. `encoding` is `utf-8` (the default) or `base64`.
public struct WireInputFile: Codable, Sendable, Equatable {
    public var path: String
    public var content: String
    public var encoding: String?
    public var executable: Bool?

    public init(path: String, content: String, encoding: String? = nil, executable: Bool? = nil) {
        self.path = path
        self.content = content
        self.encoding = encoding
        self.executable = executable
    }
}

/// An input file as a job lists it (`InputFileEntry`): its path, size and mode, not its bytes.
public struct WireInputFileEntry: Codable, Sendable, Equatable {
    public var path: String
    public var size: Int64
    public var executable: Bool

    public init(path: String, size: Int64, executable: Bool) {
        self.path = path
        self.size = size
        self.executable = executable
    }
}
