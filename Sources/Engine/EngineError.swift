import Store

/// Why the engine refused a request, in words the API shows as they are.
public enum EngineError: Error, CustomStringConvertible, Equatable {
    case jobNotFound(Int64)
    case executionNotFound(Int64)
    case unknownRuntime(String, known: [String])
    case scriptTooLarge(bytes: Int, limit: Int)
    case invalidPolicy(String)
    /// Input files beyond a limit (`max_files_bytes`, the count), in words naming the rule.
    case invalidFiles(String)
    case shuttingDown
    case store(StoreError)

    public var description: String {
        switch self {
        case .jobNotFound(let id): return "job \(id) not found"
        case .executionNotFound(let id): return "execution \(id) not found"
        case .unknownRuntime(let type, let known): return "no runtime for script type \"\(type)\" (known: \(known.joined(separator: ", ")))"
        case .scriptTooLarge(let bytes, let limit): return "the script is \(bytes) bytes; at most \(limit) are accepted"
        case .invalidPolicy(let why): return why
        case .invalidFiles(let why): return why
        case .shuttingDown: return "the engine is shutting down and takes no new work"
        case .store(let e): return e.description
        }
    }
}
