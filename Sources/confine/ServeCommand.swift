import API
import Credentials
import ArgumentParser
import Engine
import Foundation
import Logging
import CoreMetrics
import Sandbox
import Store
import Wire

/// `confine serve`: the REST API and the engine, on the embedded SQLite store or a PostgreSQL
/// database shared by any number of nodes.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the REST API: store jobs, run them in the sandbox, keep every execution.",
        discussion: """
            Configuration comes from --config (YAML), then CONFINE_* environment variables, then \
            the flags below; anything else keeps its default. Keys of the file:
            \(ServerConfiguration.keys.map { "  \($0.key)\($0.env.isEmpty ? "" : " ($\($0.env))"): \($0.help)" }.joined(separator: "\n"))

            SIGHUP reloads the policies folder (refused as a whole, with the errors, when any \
            file is invalid; running executions keep the policy they started with). \
            SIGTERM or SIGINT stops taking work, lets running executions finish for \
            shutdown_grace, interrupts the rest, and exits. Exit status: 0 after a clean stop, \
            78 for an invalid configuration or policy, 74 when the database cannot be opened, \
            71 when the sandbox cannot work on this host: the host's user namespaces, cgroups and \
            seccomp are tried at start, and a missing one stops the start, named, unless \
            allow_weaker lists it (cgroups, seccomp), in which case runs go without it and \
            /ready and every execution say so.
            """
    )

    @Option(name: .long, help: "A YAML configuration file.")
    var config: String?

    @Option(name: .long, help: "host:port to listen on (default 127.0.0.1:8000).")
    var listen: String?

    @Option(name: .long, help: "The SQLite database file (default ./var/confine.sqlite), or a postgres:// URL shared by every node.")
    var database: String?

    @Option(name: .long, help: "The policies folder (default ./policies).")
    var policies: String?

    @Option(name: .long, help: "Executions run at once (default: the number of cores).")
    var workers: Int?

    @Option(name: .long, help: "Log format: json (one object a line), text, or auto (text on a terminal, JSON otherwise).")
    var logFormat: String?

    @Option(name: .long, help: "Lowest level logged: trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    func run() async throws {
        do {
            try await serve()
        } catch let failure as ServeFailure {
            FileHandle.standardError.write(Data("confine: \(failure.message)\n".utf8))
            throw ExitCode(failure.code)
        }
    }

    /// Starts the server in its order (each step's failure is a `ServeFailure` with its exit
    /// status), serves until SIGTERM or SIGINT, then stops.
    private func serve() async throws {
        var configuration = try loadConfiguration()
        Self.bootstrapLogging(configuration)
        configuration.engine.logger = Logger(label: "confine.engine")
        configuration.engine.workerName = configuration.effectiveNodeName
        // The product version, as `confine --version` prints it (the schema is the version's).
        configuration.engine.nodeVersion = ConfineVersion.current
        let logger = Logger(label: "confine")
        let openFiles = Self.raiseOpenFileLimit()
        if config == nil, policies == nil, ProcessInfo.processInfo.environment["CONFINE_POLICIES"] == nil {
            configuration.policies = PolicyDirectory.locate()
        }
        let policySet = try Self.loadPolicies(configuration)
        let store = try await Self.openStore(configuration, logger: logger)
        try Self.adaptIsolation(&configuration, logger: logger)
        let secrets = try Self.loadSecrets(configuration)
        configuration.engine.openSecret = { sealed in try secrets.open(sealed) }
        try await Self.checkSecrets(secrets, store, configuration)
        try await Self.ensureAdmin(store, configuration, logger: logger)
        let sandbox = try Self.makeSandbox(configuration)
        // One registry for the engine, the HTTP server and any library reporting to MetricsSystem.
        let metrics = ServerMetrics()
        MetricsSystem.bootstrap(metrics.factory)
        let engine = Engine(store: store, sandbox: sandbox, policies: policySet, configuration: configuration.engine,
                            metrics: metrics.engine)
        try await Self.start(engine, logger: logger)
        logger.info("""
            store \(configuration.databaseLocation), policies \(configuration.policies) (\(policySet.names.joined(separator: ", "))), \
            \(configuration.engine.workers) workers, cgroup \(sandbox.cgroups?.version.rawValue ?? "none"), \
            up to \(openFiles) open files
            """)
        let hangup = Self.reloadPoliciesOnHangup(engine, logger: logger)
        defer { hangup.cancel() }
        let host = configuration.host
        let server = APIServer(engine: engine, configuration: configuration, access: store, secrets: secrets,
                               metrics: metrics, logger: Logger(label: "confine.api"))
        let app = server.application(logger: logger) { port in
            logger.info("listening on http://\(host.contains(":") ? "[\(host)]" : host):\(port) (dashboard at /ui/, docs at /docs)")
        }
        do {
            try await app.runService()
        } catch {
            await engine.shutdown()
            await store.shutdown()
            throw ServeFailure(code: 71, message: "server: \(error)")
        }
        // The engine has stopped (its node row says `stopped`): the database's connections go last.
        await store.shutdown()
        logger.info("stopped")
    }
}

extension ServeCommand {
    /// Every connection holds a descriptor, and thousands of clients may connect at once: the
    /// soft limit on open files goes up to the hard one. Returns the limit now in force.
    static func raiseOpenFileLimit() -> UInt64 {
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        return UInt64(limit.rlim_cur)
    }
}

/// A start-up failure of `confine serve`, shown once with its exit status.
struct ServeFailure: Error, CustomStringConvertible {
    var code: Int32
    var message: String
    var description: String { message }
}
