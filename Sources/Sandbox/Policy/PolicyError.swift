import HumanText
/// One thing wrong in a policy file: where (the key path, and the line when known) and what
/// was expected.
///
/// `keyPath` uses the file's own spelling: `limits.memory`, `filesystem.read_only[2].source`;
/// it is empty for the document as a whole.
public struct PolicyProblem: Sendable, Equatable, CustomStringConvertible {
    /// Dotted path of the offending key, list indices in brackets.
    public var keyPath: String
    /// What is wrong and what is expected, e.g. `expected a size such as 256MiB or 1.5GiB, got "lots"`.
    public var message: String
    /// 1-based line of the offending node in the file, when known.
    public var line: Int?

    public init(keyPath: String, message: String, line: Int? = nil) {
        self.keyPath = keyPath
        self.message = message
        self.line = line
    }

    /// `limits.memory: expected a size such as 256MiB or 1.5GiB, got "lots"`.
    public var description: String { keyPath.isEmpty ? message : "\(keyPath): \(message)" }
}

/// Why a policy could not be loaded, or an override could not be applied.
///
/// Every case names what an operator needs to fix it: the file, the key path, the limit, and
/// what was expected. `description` is ready to print; for `.invalid` it holds one line per
/// problem, each starting with the file path, e.g.
/// `policies/default.yaml: limits.memory: expected a size such as 256MiB or 1.5GiB, got "lots"`.
public enum PolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file (or directory) could not be read.
    case unreadable(file: String, reason: String)
    /// The file is not well-formed YAML (1-based line and column).
    case syntax(file: String, line: Int, column: Int, message: String)
    /// The file is YAML but not a valid policy: every problem found, in file order.
    case invalid(file: String, problems: [PolicyProblem])
    /// No policy of that name in the directory.
    case unknownPolicy(name: String, directory: String, available: [String])
    /// Two files claim the same policy name (`x.yaml` and `x.yml`).
    case ambiguousPolicy(name: String, files: [String])
    /// Several files of a directory failed (`PolicySet.load`), each with its own error.
    case several([PolicyError])
    /// A `--limit` text (`memory=128MiB`) or an override value is malformed or out of range.
    case invalidOverride(limit: LimitName?, text: String, message: String)
    /// The policy does not let runs override this limit.
    case overrideNotAllowed(policy: String, limit: LimitName, overridable: [LimitName])
    /// The override would loosen the policy's limit; only tighter (or equal) values are accepted.
    case overrideLooser(policy: String, limit: LimitName, requested: String, policyValue: String)

    /// The problems of an `.invalid` error (empty for the other cases).
    public var problems: [PolicyProblem] {
        if case .invalid(_, let problems) = self { return problems }
        return []
    }

    public var description: String {
        switch self {
        case let .unreadable(file, reason):
            return "\(file): \(reason)"
        case let .syntax(file, line, column, message):
            return "\(file):\(line):\(column): YAML syntax error: \(message)"
        case let .invalid(file, problems):
            return problems.map { "\(file): \($0)" }.joined(separator: "\n")
        case let .unknownPolicy(name, directory, available):
            let hint = Suggestions.didYouMean(name, in: available)
            if available.isEmpty {
                return "no policy named \(HumanUnits.quoted(name)) in \(directory) (the directory holds no *.yaml policy)"
            }
            return "no policy named \(HumanUnits.quoted(name)) in \(directory)\(hint); available: \(available.joined(separator: ", "))"
        case let .ambiguousPolicy(name, files):
            return "policy \(HumanUnits.quoted(name)) is defined twice (\(files.joined(separator: ", "))); remove one"
        case let .several(errors):
            return errors.map(\.description).joined(separator: "\n")
        case let .invalidOverride(_, text, message):
            return "limit override \(HumanUnits.quoted(text)): \(message)"
        case let .overrideNotAllowed(policy, limit, overridable):
            let allowed = overridable.isEmpty
                ? "it allows no overrides"
                : "overridable: \(overridable.sorted().map(\.rawValue).joined(separator: ", "))"
            return "policy \(HumanUnits.quoted(policy)) does not allow overriding \(limit.rawValue) (\(allowed))"
        case let .overrideLooser(policy, limit, requested, policyValue):
            return "\(limit.rawValue)=\(requested) is looser than policy \(HumanUnits.quoted(policy))'s \(policyValue); an override may only tighten a limit"
        }
    }
}
