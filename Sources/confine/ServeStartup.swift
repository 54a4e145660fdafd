import API
import Credentials
import Dispatch
import Engine
import Foundation
import Logging
import Sandbox
import Store

// The steps of `confine serve`'s start, in the order `serve()` takes them; each failure is a
// `ServeFailure` with the exit status the command documents (78 configuration or policy,
// 74 database, 71 sandbox).
extension ServeCommand {
    /// The configuration: the file, then CONFINE_* variables, then the flags (each wins over
    /// the one before).
    func loadConfiguration() throws(ServeFailure) -> ServerConfiguration {
        var environment = ProcessInfo.processInfo.environment
        if let listen { environment["CONFINE_LISTEN"] = listen }
        if let database { environment["CONFINE_DATABASE"] = database }
        if let policies { environment["CONFINE_POLICIES"] = policies }
        if let workers { environment["CONFINE_WORKERS"] = String(workers) }
        if let logFormat { environment["CONFINE_LOG_FORMAT"] = logFormat }
        if let logLevel { environment["CONFINE_LOG_LEVEL"] = logLevel }
        do {
            return try ServerConfiguration.load(file: config, environment: environment)
        } catch {
            throw ServeFailure(code: 78, message: error.description)
        }
    }

    /// JSON lines or text on stderr, at the configured level.
    static func bootstrapLogging(_ configuration: ServerConfiguration) {
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
    }

    /// The policies folder, every file valid, with the `default.yaml` jobs without a policy need.
    static func loadPolicies(_ configuration: ServerConfiguration) throws(ServeFailure) -> PolicySet {
        let policySet: PolicySet
        do {
            policySet = try PolicySet.load(directory: configuration.policies)
        } catch {
            throw ServeFailure(code: 78, message: "policies: \(error.description)")
        }
        guard policySet["default"] != nil else {
            throw ServeFailure(code: 78, message: "policies: \(configuration.policies) has no default.yaml; jobs without a policy need it")
        }
        return policySet
    }

    /// The database, opened and migrated: the SQLite file, or the PostgreSQL server (tried for
    /// up to `PostgresStore.defaultConnectTimeout`, then the start stops naming the address,
    /// its password hidden, and the reason).
    static func openStore(_ configuration: ServerConfiguration, logger: Logger) async throws(ServeFailure) -> any ConfineStore {
        let location: DatabaseLocation
        do { location = try DatabaseLocation.parse(configuration.database) } catch {
            throw ServeFailure(code: 78, message: error.description)
        }
        do {
            switch location {
            case .sqlite(let path):
                let store = try SQLiteStore(path: path, reserveBytes: configuration.diskReserveBytes)
                if let note = store.folderNote { logger.warning("\(note)") }
                return store
            case .postgres(let address):
                // This node's own files (admin.token, secrets.key) live where SQLite would be.
                let folder = location.stateFolder
                if !FileManager.default.fileExists(atPath: folder) {
                    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true,
                                                            attributes: [.posixPermissions: 0o700])
                }
                logger.info("connecting to PostgreSQL at \(address)")
                return try await PostgresStore.open(address, maximumConnections: max(8, configuration.engine.workers * 2 + 8),
                                                    logger: Logger(label: "confine.store"))
            }
        } catch {
            throw ServeFailure(code: 74, message: "database: \(PostgresAddress.redact("\(error)"))")
        }
    }

    /// The host's isolation, tried: what it lacks stops the start unless allow_weaker lets the
    /// runs go without it (then said once in the log, and by /ready and every execution).
    static func adaptIsolation(_ configuration: inout ServerConfiguration, logger: Logger) throws(ServeFailure) {
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
    }

    /// The key that seals secret environment variables.
    static func loadSecrets(_ configuration: ServerConfiguration) throws(ServeFailure) -> SecretBox {
        do {
            return try SecretBox.load(base64: configuration.secretsKey, file: configuration.effectiveSecretsKeyFile)
        } catch {
            throw ServeFailure(code: 78, message: "secrets: \(error.description)")
        }
    }

    /// The secrets key opens what the database holds sealed: every node sharing a database
    /// needs the same key, and one with another key must not start (it could run no job with
    /// secrets, and would seal new ones no other node can open).
    static func checkSecrets(_ secrets: SecretBox, _ store: any ExecutionStore, _ configuration: ServerConfiguration) async throws(ServeFailure) {
        let sample: String?
        do { sample = try await store.sealedValueSample() } catch {
            throw ServeFailure(code: 74, message: "database: \(error)")
        }
        guard let sample else { return }
        do {
            _ = try secrets.open(sample)
        } catch {
            let key = configuration.secretsKey != nil ? "secrets_key (CONFINE_SECRETS_KEY)" : configuration.effectiveSecretsKeyFile
            throw ServeFailure(code: 78, message: """
                secrets: the key of \(key) cannot open the secret values stored in \(configuration.databaseLocation) \
                (\(error)); every node of one database needs the same secrets_key — copy it from a running node
                """)
        }
    }

    /// On the first start, an admin token written to its file (mode 0600).
    static func ensureAdmin(_ store: any AccessStore, _ configuration: ServerConfiguration, logger: Logger) async throws(ServeFailure) {
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
    }

    /// The sandbox (its cgroups found, its stale runs of a killed server removed).
    static func makeSandbox(_ configuration: ServerConfiguration) throws(ServeFailure) -> Sandbox {
        do {
            return try Sandbox(configuration: configuration.sandbox)
        } catch {
            throw ServeFailure(code: 71, message: "sandbox: \(error.description)")
        }
    }

    /// The engine started: executions a crash left RUNNING end as interrupted, then the workers go.
    static func start(_ engine: Engine, logger: Logger) async throws(ServeFailure) {
        do {
            let interrupted = try await engine.start()
            if !interrupted.isEmpty {
                logger.warning("recovered after a crash: \(interrupted.count) execution(s) left RUNNING ended as FAILED (interrupted)")
            }
        } catch {
            throw ServeFailure(code: 74, message: "database: \(error.description)")
        }
    }

    /// SIGHUP reloads the policies folder: all of it or nothing (the previous set stays in
    /// force when any file is invalid). Sandboxed programs get default dispositions back.
    static func reloadPoliciesOnHangup(_ engine: Engine, logger: Logger) -> any DispatchSourceSignal {
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
        return hangup
    }
}
