import Foundation
import Glibc
import Testing

/// `confine serve` refusing to start, each time with the piece named and its own exit status.
@Suite("confine serve start-up")
struct ServeCommandTests {
    func temporary(_ name: String, _ text: String? = nil) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("confine-serve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent(name).path
        if let text { try text.write(toFile: path, atomically: true, encoding: .utf8) }
        return path
    }

    @Test("An invalid configuration stops the start with the key named (exit 78)")
    func badConfiguration() throws {
        let config = try temporary("confine.yaml", "listen: 127.0.0.1:0\nqueue_limt: 5\n")
        let outcome = try CLITests.confine(["serve", "--config", config])
        #expect(outcome.status == 78, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("queue_limt: unknown key (did you mean \"queue_limit\"?)"), "\(outcome.stderr)")
    }

    @Test("A broken policies folder stops the start with the file and key named (exit 78)")
    func badPolicies() throws {
        let policies = try temporary("default.yaml", "limits:\n  memroy: 1MiB\n")
        let folder = URL(fileURLWithPath: policies).deletingLastPathComponent().path
        let outcome = try CLITests.confine(["serve", "--listen", "127.0.0.1:0", "--policies", folder,
                                            "--database", folder + "/db.sqlite"])
        #expect(outcome.status == 78, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("memroy"), "\(outcome.stderr)")
    }

    @Test("A database that cannot be opened stops the start with the path named (exit 74)")
    func badDatabase() throws {
        let garbage = try temporary("confine.sqlite", String(repeating: "not a database ", count: 100))
        let outcome = try CLITests.confine(["serve", "--listen", "127.0.0.1:0", "--database", garbage])
        #expect(outcome.status == 74, "\(outcome.stderr)")
        #expect(outcome.stderr.contains(garbage), "\(outcome.stderr)")
    }
}
