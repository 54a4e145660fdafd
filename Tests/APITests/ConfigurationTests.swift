import API
import Domain
import Foundation
import Sandbox
import Testing

/// `confine serve`'s configuration: file, then CONFINE_* variables, then defaults; every
/// mistake refused with the key named.
@Suite("Server configuration")
struct ConfigurationTests {
    /// Writes a configuration file, passes its path to `body`, removes it.
    func withFile<T>(_ text: String, _ body: (String) throws -> T) throws -> T {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("confine-config-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try body(path)
    }

    @Test("Defaults: loopback 127.0.0.1:8000, ./var/confine.sqlite, ./policies, 2 MiB bodies, 1 MiB scripts")
    func defaults() throws {
        let c = try ServerConfiguration.load(file: nil, environment: [:])
        #expect(c.host == "127.0.0.1" && c.port == 8000)
        #expect(c.database == "./var/confine.sqlite")
        #expect(c.policies == "./policies")
        #expect(c.maxBodyBytes == 2 << 20)
        #expect(c.engine.maxScriptBytes == 1 << 20)
        #expect(c.engine.workers == ProcessInfo.processInfo.activeProcessorCount)
        #expect(c.sandbox.groupCPUWeight == SandboxConfiguration.defaultGroupCPUWeight)
        #expect(SandboxConfiguration.builtInGroupCPUWeight < 100, "sandboxes weigh less than the server")
    }

    @Test("Every key from the file, and the environment over the file")
    func fileAndEnvironment() throws {
        let c = try withFile("""
            listen: 0.0.0.0:9000
            database: /tmp/x/db.sqlite
            policies: /etc/confine/policies
            workers: 3
            queue_limit: 50
            max_body_size: 512KiB
            max_script_size: 100kB
            max_wait: 2m
            shutdown_grace: 30s
            sandbox_cpu_weight: 10
            retention: {keep_per_job: 10, max_age: 30d, interval: 5m}
            runtimes:
              ruby: {command: [/usr/bin/ruby, --disable-gems], script_path: /sandbox/script.rb}
            """) { path in
            try ServerConfiguration.load(file: path, environment: ["CONFINE_WORKERS": "5", "CONFINE_LISTEN": "127.0.0.1:7000"])
        }
        #expect(c.host == "127.0.0.1" && c.port == 7000, "the environment wins")
        #expect(c.engine.workers == 5)
        #expect(c.database == "/tmp/x/db.sqlite" && c.policies == "/etc/confine/policies")
        #expect(c.engine.queueLimit == 50)
        #expect(c.maxBodyBytes == 512 << 10 && c.engine.maxScriptBytes == 100_000)
        #expect(c.maxWaitSeconds == 120)
        #expect(c.engine.shutdownGrace == .seconds(30))
        #expect(c.sandbox.groupCPUWeight == 10)
        #expect(c.engine.keepPerJob == 10 && c.engine.maxAge == .seconds(30 * 86_400) && c.engine.retentionInterval == .seconds(300))
        #expect(c.engine.runtimes[ScriptType("ruby")]?.command == ["/usr/bin/ruby", "--disable-gems"])
        #expect(c.engine.runtimes[.python] != nil, "configured runtimes add to the built-in ones")
    }

    @Test("Connection timeouts and the disk reserve: defaults, from the file and the environment, 0 for no reserve")
    func timeoutsAndReserve() throws {
        let defaults = try ServerConfiguration.load(file: nil, environment: [:])
        #expect(defaults.idleTimeout == .seconds(60) && defaults.requestTimeout == .seconds(30))
        #expect(defaults.diskReserveBytes == 8 << 20)
        let c = try withFile("idle_timeout: 2m\nrequest_timeout: 1.5s\ndisk_reserve: 64MiB\n") { path in
            try ServerConfiguration.load(file: path, environment: ["CONFINE_REQUEST_TIMEOUT": "5s"])
        }
        #expect(c.idleTimeout == .seconds(120) && c.requestTimeout == .seconds(5) && c.diskReserveBytes == 64 << 20)
        #expect(try ServerConfiguration.load(file: nil, environment: ["CONFINE_DISK_RESERVE": "0"]).diskReserveBytes == 0)
        let bad = #expect(throws: ConfigurationError.self) {
            _ = try ServerConfiguration.load(file: nil, environment: ["CONFINE_IDLE_TIMEOUT": "60"])
        }
        #expect(bad?.key == "CONFINE_IDLE_TIMEOUT", "\(String(describing: bad))")
    }

    @Test("Mistakes name the key: unknown keys (with a suggestion), bad values, bad runtimes, bad variables")
    func mistakes() throws {
        func refusal(_ yaml: String, env: [String: String] = [:]) throws -> String {
            try withFile(yaml) { path in
                do {
                    _ = try ServerConfiguration.load(file: path, environment: env)
                    return "accepted"
                } catch {
                    return "\(error)"
                }
            }
        }
        #expect(try refusal("wokers: 2").contains("wokers: unknown key (did you mean \"workers\"?)"))
        #expect(try refusal("workers: many").contains("workers: expected a whole number"))
        #expect(try refusal("listen: localhost").contains("listen: expected host:port"))
        #expect(try refusal("max_body_size: 2M").contains("max_body_size:"))
        #expect(try refusal("shutdown_grace: 10").contains("shutdown_grace:"))
        #expect(try refusal("retention: {keep: 3}").contains("retention.keep"))
        #expect(try refusal("runtimes: {ruby: {command: [ruby]}}").contains("runtimes.ruby.command: expected the interpreter as an absolute path"))
        #expect(try refusal("runtimes: {ruby: {command: [/usr/bin/ruby], script_path: /tmp/x.rb}}").contains("runtimes.ruby.script_path"))
        #expect(try refusal("- a list").contains("must be a mapping"))
        #expect(try refusal("workers: 2", env: ["CONFINE_QUEUE_LIMIT": "-1"]).contains("CONFINE_QUEUE_LIMIT: expected a whole number"))
        #expect(try refusal("{{").contains("not valid YAML"))
    }

    @Test("Sandbox ids: a range of host ids from the file or the environment; the spawner's ids must lie outside it and differ from nobody")
    func sandboxIDs() throws {
        func load(_ yaml: String, env: [String: String] = [:]) throws -> ServerConfiguration {
            try withFile(yaml) { path in try ServerConfiguration.load(file: path, environment: env) }
        }
        func refusal(_ yaml: String, env: [String: String] = [:]) -> String {
            do {
                _ = try load(yaml, env: env)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        let defaults = try load("workers: 1")
        #expect(defaults.sandbox.hostIDs == 0x7000_0000...(0x7000_0000 + 65_535))
        let c = try load("sandbox_id_first: 200000\nsandbox_id_count: 1000", env: ["CONFINE_SANDBOX_ID_COUNT": "50"])
        #expect(c.sandbox.hostIDs == 200_000...200_049)
        #expect(refusal("sandbox_id_first: 0").contains("sandbox_id_first: expected a whole number from 1"))
        #expect(refusal("sandbox_id_count: 0").contains("sandbox_id_count:"))
        let inside = refusal("spawner_uid: \(0x7000_0000 + 5)")
        #expect(inside.contains("spawner_uid:") && inside.contains("must differ from the ids sandboxed programs run as"), "\(inside)")
        #expect(refusal("spawner_gid: 65534").contains("spawner_gid:"))
        #expect(refusal("spawner_uid: 65534").contains("nobody"))
    }
}

