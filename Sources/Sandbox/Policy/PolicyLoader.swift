import Foundation
import HumanText
import Yams

/// Loads policy files (YAML) into validated `Policy` values.
///
/// Promises: a returned `Policy` passed every check of the schema (see `policies/default.yaml`
/// for the format): no unknown key, every value of the right type, in range and coherent with
/// the others, every required host path present. Otherwise it throws a `PolicyError` that lists
/// *all* the problems of the file, each with the file, the key path and what was expected.
public enum PolicyLoader {
    /// Where policies live unless told otherwise: `$CONFINE_POLICIES` if set and non-empty,
    /// else `./policies`.
    public static var defaultDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["CONFINE_POLICIES"], !dir.isEmpty { return dir }
        return "./policies"
    }

    /// Loads one file; the policy's name is the file's base name without `.yaml`/`.yml`.
    public static func load(file: String) throws(PolicyError) -> Policy {
        let text = try readText(file)
        return try load(yaml: text, name: policyName(ofFile: file), file: file)
    }

    /// Loads a policy from YAML text. `file` is only used in messages; host paths are checked
    /// against this machine's filesystem.
    public static func load(yaml: String, name: String, file: String) throws(PolicyError) -> Policy {
        try load(yaml: yaml, name: name, file: file, hostPathExists: { FileManager.default.fileExists(atPath: $0) })
    }

    /// Same, with the host-path check supplied by the caller (tests, or checking a policy meant
    /// for another machine).
    public static func load(yaml: String, name: String, file: String,
                            hostPathExists: @escaping (String) -> Bool) throws(PolicyError) -> Policy {
        let root = try compose(yaml, file: file)
        var decoder = PolicyDecoder(hostPathExists: hostPathExists)
        let policy = decoder.decode(root, name: name)
        guard decoder.problems.isEmpty else { throw .invalid(file: file, problems: decoder.problems) }
        return policy
    }

    /// A policy by name (`default` → `<directory>/default.yaml` or `.yml`) or by path (a value
    /// containing `/` or ending in `.yaml`/`.yml`). An unknown name throws
    /// `PolicyError.unknownPolicy` listing the names available in `directory`.
    public static func resolve(nameOrPath: String, directory: String = defaultDirectory) throws(PolicyError) -> Policy {
        if isPath(nameOrPath) { return try load(file: nameOrPath) }
        let candidates = ["yaml", "yml"].map { (directory as NSString).appendingPathComponent("\(nameOrPath).\($0)") }
        let existing = candidates.filter { FileManager.default.fileExists(atPath: $0) }
        if existing.count > 1 { throw .ambiguousPolicy(name: nameOrPath, files: existing) }
        if let file = existing.first { return try load(file: file) }
        let available = ((try? policyFiles(in: directory)) ?? []).map(policyName(ofFile:))
        throw .unknownPolicy(name: nameOrPath, directory: directory, available: Array(Set(available)).sorted())
    }

    /// Whether `nameOrPath` is read as a path rather than a policy name.
    public static func isPath(_ nameOrPath: String) -> Bool {
        nameOrPath.contains("/") || nameOrPath.hasSuffix(".yaml") || nameOrPath.hasSuffix(".yml")
    }

    /// `default` for `policies/default.yaml`.
    public static func policyName(ofFile file: String) -> String {
        let base = (file as NSString).lastPathComponent
        for ext in [".yaml", ".yml"] where base.hasSuffix(ext) { return String(base.dropLast(ext.count)) }
        return base
    }

    // MARK: Internals

    /// The `*.yaml` / `*.yml` files of a directory (not hidden ones), as paths, sorted.
    static func policyFiles(in directory: String) throws(PolicyError) -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            var isDir: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: directory, isDirectory: &isDir)
            throw .unreadable(file: directory, reason: !exists ? "no such directory" : (isDir.boolValue ? "cannot be read" : "is not a directory"))
        }
        return names.filter { !$0.hasPrefix(".") && ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) }
            .sorted()
            .map { (directory as NSString).appendingPathComponent($0) }
    }

    static func readText(_ file: String) throws(PolicyError) -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDir) else {
            throw .unreadable(file: file, reason: "no such file")
        }
        if isDir.boolValue { throw .unreadable(file: file, reason: "is a directory, not a policy file") }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw .unreadable(file: file, reason: "cannot be read (permission denied?)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw .unreadable(file: file, reason: "is not UTF-8 text")
        }
        return text
    }

    static func compose(_ text: String, file: String) throws(PolicyError) -> Node? {
        do {
            return try Yams.compose(yaml: text)
        } catch let error as YamlError {
            switch error {
            case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
                 let .composer(context, problem, mark, _):
                let where_ = context.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? ""
                throw .syntax(file: file, line: mark.line, column: mark.column, message: problem + where_)
            case let .duplicatedKeysInMapping(duplicates, context):
                let keys = duplicates.map(HumanUnits.quoted).joined(separator: ", ")
                throw .syntax(file: file, line: context.mark.line, column: context.mark.column,
                              message: "key \(keys) appears more than once in the same mapping")
            case let .reader(problem, offset, _, _):
                let prefix = offset.map { text.prefix($0) } ?? ""
                let line = prefix.filter { $0 == "\n" }.count + 1
                let column = prefix.count - (prefix.lastIndex(of: "\n").map { prefix.distance(from: prefix.startIndex, to: $0) + 1 } ?? 0) + 1
                throw .syntax(file: file, line: line, column: column, message: problem)
            default:
                throw .syntax(file: file, line: 1, column: 1, message: error.description)
            }
        } catch {
            throw .syntax(file: file, line: 1, column: 1, message: String(describing: error))
        }
    }
}
