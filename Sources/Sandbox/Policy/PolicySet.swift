/// Every policy of a directory, loaded and validated together (what a server loads at start).
///
/// Promises: either every `*.yaml` / `*.yml` file of the directory loaded, or `load` throws
/// with the errors of *all* the files that did not (`PolicyError.several` when more than one).
public struct PolicySet: Sendable, Equatable {
    /// The directory the policies came from.
    public let directory: String
    /// Policies by name (file base name).
    public let policies: [String: Policy]

    public init(directory: String, policies: [String: Policy]) {
        self.directory = directory
        self.policies = policies
    }

    /// The policy names, sorted.
    public var names: [String] { policies.keys.sorted() }

    /// The policy named `name`, if any.
    public subscript(name: String) -> Policy? { policies[name] }

    /// The policy named `name`, or `PolicyError.unknownPolicy` listing the available names.
    public func policy(named name: String) throws(PolicyError) -> Policy {
        guard let policy = policies[name] else {
            throw .unknownPolicy(name: name, directory: directory, available: names)
        }
        return policy
    }

    /// Loads every `*.yaml` / `*.yml` file (hidden files excepted) of `directory`.
    /// A directory with no policy file gives an empty set.
    public static func load(directory: String = PolicyLoader.defaultDirectory) throws(PolicyError) -> PolicySet {
        var policies: [String: Policy] = [:]
        var files: [String: String] = [:]
        var errors: [PolicyError] = []
        for file in try PolicyLoader.policyFiles(in: directory) {
            let name = PolicyLoader.policyName(ofFile: file)
            if let other = files[name] {
                errors.append(.ambiguousPolicy(name: name, files: [other, file]))
                continue
            }
            files[name] = file
            do {
                policies[name] = try PolicyLoader.load(file: file)
            } catch {
                errors.append(error)
            }
        }
        if errors.count == 1 { throw errors[0] }
        if !errors.isEmpty { throw .several(errors) }
        return PolicySet(directory: directory, policies: policies)
    }
}
