import Foundation
import Testing
@testable import Sandbox

/// Shared helpers for the policy test suites.
enum PolicyFixtures {
    /// The checkout's root, found from this file's path (Tests/SandboxTests/…).
    static let repositoryRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static var policiesDirectory: String { repositoryRoot + "/policies" }

    static let shippedNames = ["default", "networked", "strict"]

    /// Loads YAML with every host path existing unless `exists` says otherwise.
    static func load(_ yaml: String, name: String = "test", file: String = "policies/test.yaml",
                     exists: @escaping (String) -> Bool = { _ in true }) throws(PolicyError) -> Policy {
        try PolicyLoader.load(yaml: yaml, name: name, file: file, hostPathExists: exists)
    }

    /// The error loading `yaml` throws, or nil when it loads.
    static func error(_ yaml: String, file: String = "policies/test.yaml",
                      exists: @escaping (String) -> Bool = { _ in true }) -> PolicyError? {
        do {
            _ = try load(yaml, file: file, exists: exists)
            return nil
        } catch {
            return error
        }
    }

    /// The problems loading `yaml` reports (empty when it loads or fails otherwise).
    static func problems(_ yaml: String, exists: @escaping (String) -> Bool = { _ in true }) -> [PolicyProblem] {
        error(yaml, exists: exists)?.problems ?? []
    }
}
