import Domain
import Engine
import Foundation

/// Reads the `files` of a body (a job's, a run's): each `{"path", "content", "encoding":
/// "utf-8"|"base64", "executable"}`, its path relative and normalised (no `..`, `.`, empty
/// segment, leading or trailing `/`), no two alike and none a folder of another, at most
/// `EngineConfiguration.maxFiles` of them and `max_files_bytes` in all. Every refusal is a 422
/// naming the file (`files[2].path`) and the rule.
extension BodyReader {
    static let fileFields = ["path", "content", "encoding", "executable"]

    func inputFiles(_ key: String = "files", maxBytes: Int) throws(Problem) -> [InputFile]? {
        guard let value = members[key], value != .null else { return nil }
        guard case .array(let items) = value else {
            throw .validation(field(key), "\(field(key)): expected an array of files ({\"path\", \"content\"}), got \(value.kind)")
        }
        if items.count > EngineConfiguration.maxFiles {
            throw .validation(field(key), "\(field(key)): \(items.count) files; at most \(EngineConfiguration.maxFiles) are accepted")
        }
        var files: [InputFile] = []
        var total = 0
        var seen: [String: Int] = [:]
        for (i, item) in items.enumerated() {
            let at = "\(field(key))[\(i)]"
            let reader = try BodyReader(item, path: at, allowed: Self.fileFields)
            let path = try reader.requiredString("path")
            if let why = Self.pathProblem(path) { throw .validation("\(at).path", "\(at).path \"\(path)\" \(why)") }
            if let other = seen[path] {
                throw .validation("\(at).path", "\(at).path \"\(path)\" is also \(field(key))[\(other)]'s; each path once")
            }
            let content = try reader.requiredString("content")
            let data: Data
            switch try reader.string("encoding") ?? "utf-8" {
            case "utf-8": data = Data(content.utf8)
            case "base64":
                guard let decoded = Data(base64Encoded: content) else {
                    throw .validation("\(at).content", "\(at).content (\(path)) is not valid base64")
                }
                data = decoded
            case let other:
                throw .validation("\(at).encoding", "\(at).encoding: expected utf-8 or base64, got \"\(other)\"")
            }
            total += data.count
            if total > maxBytes {
                throw .validation("\(at).content", "\(at) (\(path)) brings the files to \(total) bytes; at most \(maxBytes) in all (max_files_bytes)")
            }
            seen[path] = i
            files.append(InputFile(path: path, content: data, executable: try reader.bool("executable") ?? false))
        }
        // A file cannot also be a folder of another.
        for file in files {
            var folder = file.path
            while let slash = folder.lastIndex(of: "/") {
                folder = String(folder[..<slash])
                if let other = seen[folder] {
                    throw .validation("\(field(key))[\(other)].path",
                                      "\(field(key))[\(other)].path \"\(folder)\" is a folder of \"\(file.path)\"; a path is a file or a folder, not both")
                }
            }
        }
        return files
    }

    /// Why a path is not a relative, normalised one; nil when it is.
    static func pathProblem(_ path: String) -> String? {
        if path.isEmpty { return "is empty" }
        if path.hasPrefix("/") { return "is absolute; give a path relative to the working directory (e.g. data/in.csv)" }
        if path.utf8.count > 1024 { return "is \(path.utf8.count) bytes long; at most 1024" }
        if path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return "contains a control character" }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        if segments.contains("..") { return "contains '..'; paths stay inside the working directory" }
        if segments.contains(where: { $0.isEmpty || $0 == "." }) {
            let normal = segments.filter { !$0.isEmpty && $0 != "." }.joined(separator: "/")
            return "is not normalised (an empty or '.' segment)" + (normal.isEmpty ? "" : "; write \"\(normal)\"")
        }
        if segments.contains(where: { $0.utf8.count > 255 }) { return "has a segment longer than 255 bytes" }
        return nil
    }
}
