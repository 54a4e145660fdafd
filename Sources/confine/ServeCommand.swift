import API
import Credentials
import ArgumentParser
import Engine
import Foundation
import Logging
import CoreMetrics
import Sandbox
import Store

/// `confine serve`: the REST API and the engine, on the embedded SQLite store.
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

    @Option(name: .long, help: "The SQLite database file (default ./var/confine.sqlite).")
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

    private func serve() async throws {
        var configuration: ServerConfiguration
        do {
            var environment = ProcessInfo.processInfo.environment
            // Flags win over the environment, which wins over the file.
            if let listen { environment["CONFINE_LISTEN"] = listen }
            if let database { environment["CONFINE_DATABASE"] = database }
            if let policies { environment["CONFINE_POLICIES"] = policies }
            if let workers { environment["CONFINE_WORKERS"] = String(workers) }
            if let logFormat { environment["CONFINE_LOG_FORMAT"] = logFormat }
            if let logLevel { environment["CONFINE_LOG_LEVEL"] = logLevel }
            configuration = try ServerConfiguration.load(file: config, environment: environment)
        } catch {
            throw ServeFailure(code: 78, message: error.description)
        }
        let json = configuration.logFormat == "json" || (configuration.logFormat == "auto" && isatty(2) == 0)
        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            if json {
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        configuration.engine.logger = Logger(label: "confine.engine")
        let logger = Logger(label: "confine")
        let openFiles = Self.raiseOpenFileLimit()
        if config == nil, policies == nil, ProcessInfo.processInfo.environment["CONFINE_POLICIES"] == nil {
            configuration.policies = PolicyDirectory.locate()
        }
        let policySet: PolicySet
        do {
            policySet = try PolicySet.load(directory: configuration.policies)
        } catch {
            throw ServeFailure(code: 78, message: "policies: \(error.description)")
        }
        guard policySet["default"] != nil else {
            throw ServeFailure(code: 78, message: "policies: \(configuration.policies) has no default.yaml; jobs without a policy need it")
        }
        let store: SQLiteStore
        do {
            store = try SQLiteStore(path: configuration.database, reserveBytes: configuration.diskReserveBytes)
        } catch {
            throw ServeFailure(code: 74, message: "database: \(error)")
        }
        // The host's isolation, tried: what it lacks stops the start unless allow_weaker lets
        // the runs go without it.
        let weakened: [IsolationFeature]
        do {
            weakened = try configuration.adaptIsolation(to: .live)
        } catch {
            throw ServeFailure(code: 71, message: "sandbox: \(error.description)")
        }
        if !weakened.isEmpty {
            logger.warning("""
                weaker isolation (allow_weaker): \(weakened.map { "without \($0.rawValue), \($0.consequence)" }.joined(separator: "; ")); \
                /ready and every execution say so
                """)
        }
        let secrets: SecretBox
        do {
            secrets = try SecretBox.load(base64: configuration.secretsKey, file: configuration.effectiveSecretsKeyFile)
        } catch {
            throw ServeFailure(code: 78, message: "secrets: \(error.description)")
        }
        configuration.engine.openSecret = { sealed in try secrets.open(sealed) }
        do {
            if try await AdminBootstrap.ensureAdmin(access: store, file: configuration.effectiveAdminTokenFile) {
                logger.notice("""
                    first start: made an admin token and wrote it to \(configuration.effectiveAdminTokenFile) (mode 0600); \
                    use it to make other tokens (confine token create), then keep it safe or revoke it
                    """)
            }
        } catch {
            throw ServeFailure(code: 74, message: "admin token: \(error)")
        }
        let sandbox: Sandbox
        do {
            sandbox = try Sandbox(configuration: configuration.sandbox)
        } catch {
            throw ServeFailure(code: 71, message: "sandbox: \(error.description)")
        }
        // One registry for the engine, the HTTP server and any library reporting to MetricsSystem.
        let metrics = ServerMetrics()
        MetricsSystem.bootstrap(metrics.factory)
        let engine = Engine(store: store, sandbox: sandbox, policies: policySet, configuration: configuration.engine,
                            metrics: metrics.engine)
        do {
            let interrupted = try await engine.start()
            if !interrupted.isEmpty {
                logger.warning("recovered after a crash: \(interrupted.count) execution(s) left RUNNING ended as FAILED (interrupted)")
            }
        } catch {
            throw ServeFailure(code: 74, message: "database: \(error.description)")
        }
        logger.info("""
            store \(configuration.database), policies \(configuration.policies) (\(policySet.names.joined(separator: ", "))), \
            \(configuration.engine.workers) workers, cgroup \(sandbox.cgroups?.version.rawValue ?? "none"), \
            up to \(openFiles) open files
            """)
        // SIGHUP reloads the policies folder: all of it or nothing (the previous set stays in
        // force when any file is invalid). Sandboxed programs get default dispositions back.
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hangup.setEventHandler {
            do {
                let loaded = try engine.reloadPolicies()
                logger.info("SIGHUP: policies reloaded from \(loaded.directory) (\(loaded.names.joined(separator: ", ")))")
            } catch {
                logger.error("SIGHUP: \(error)")
            }
        }
        hangup.resume()
        defer { hangup.cancel() }
        let host = configuration.host
        let server = APIServer(engine: engine, configuration: configuration, access: store, secrets: secrets,
                               metrics: metrics, logger: Logger(label: "confine.api"))
        let app = server.application(logger: logger) { port in
            logger.info("listening on http://\(host.contains(":") ? "[\(host)]" : host):\(port) (docs at /docs)")
        }
        do {
            try await app.runService()
        } catch {
            await engine.shutdown()
            throw ServeFailure(code: 71, message: "server: \(error)")
        }
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
