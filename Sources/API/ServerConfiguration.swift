import Domain
import Engine
import Foundation
import HumanText
import Sandbox
import Store
import Yams

/// Everything `confine serve` is configured with: a YAML file (`--config confine.yaml`), then
/// `CONFINE_*` environment variables over it, then built-in defaults. Unknown keys and wrong
/// values stop the start with a `ConfigurationError` naming the key.
public struct ServerConfiguration: Sendable {
    /// Host and port the HTTP server binds (loopback by default).
    public var host = "127.0.0.1"
    public var port = 8000
    /// The database: a SQLite file, created on first start, or a `postgres://` URL shared by
    /// every node (`databaseLocation`); validated when read.
    public var database = "./var/confine.sqlite"
    /// The database as a location (printed with its password hidden).
    public var databaseLocation: DatabaseLocation { (try? DatabaseLocation.parse(database)) ?? .sqlite(path: database) }
    /// Room held back on the database's disk (a file beside it) so that running executions can
    /// still be stored when the disk fills; 0 for none.
    public var diskReserveBytes = SQLiteStore.defaultReserveBytes
    /// The policies folder.
    public var policies = "./policies"
    /// The largest request body accepted, in bytes (413 beyond).
    public var maxBodyBytes = 2 << 20
    /// The longest `wait=true` a run request may ask for, in seconds.
    public var maxWaitSeconds = 300.0
    /// A connection with no complete request (head or body part) and no answer pending for
    /// this long is closed: idle keep-alive connections, and headers sent slowly or never.
    public var idleTimeout: Duration = .seconds(60)
    /// A request must arrive whole (head and body) within this of its head, else 408 and the
    /// connection is closed: bodies sent slowly or never finished.
    public var requestTimeout: Duration = .seconds(30)
    /// Connections open at once, at most (nil: the open-file limit less room, at most 10,000);
    /// beyond, an idle connection is closed to make room, or the new one refused with 503.
    public var maxConnections: Int?
    /// Connections open at once from one client address, at most (nil: a quarter of the total,
    /// at least 16).
    public var maxConnectionsPerClient: Int?
    /// How the engine runs executions (workers, queue bound, script cap, retention, runtimes…).
    public var engine: EngineConfiguration = {
        var engine = EngineConfiguration()
        engine.webhooks.body = WebhookRoutes.payload
        return engine
    }()
    /// Host-side sandbox settings (the CPU weight of all sandboxes together).
    public var sandbox = SandboxConfiguration()
    /// Isolation the host may lack without stopping the start (`allow_weaker`): runs then go
    /// without it, and `/ready` and every execution say so. Only cgroups and seccomp.
    public var allowWeaker: Set<IsolationFeature> = []
    /// The lowest level logged: trace, debug, info, notice, warning, error, critical.
    public var logLevel = "info"
    /// `json` (one object a line), `text`, or `auto`: text on a terminal, JSON otherwise.
    public var logFormat = "auto"
    /// Routes answered without a token besides `/health`, beyond those open by default
    /// (`public_routes`): any of `ready`, `metrics`, `docs`, `openapi`, `ui`.
    public var publicRoutes: Set<String> = []
    /// Routes open by default that need a token (`private_routes`): any of `docs`, `openapi`,
    /// `ui` (none by default).
    public var privateRoutes: Set<String> = []
    /// The switches answered without a token: the defaults (`AccessRule.openByDefault`) and
    /// `public_routes`, less `private_routes`.
    public var openRoutes: Set<String> { AccessRule.openByDefault.union(publicRoutes).subtracting(privateRoutes) }
    /// The URL clients reach this server at (`public_url`), written into the OpenAPI
    /// document's `servers`; nil: the URL each request was sent to (its `Host`).
    public var publicURL: String?
    /// Web origins whose pages may call the API (CORS, with preflight): exact origins such as
    /// `https://ops.example.com`, or `*` for any (none by default).
    public var corsOrigins: [String] = []
    /// Where the first admin token is written on the first start (nil: `admin.token` beside
    /// the database).
    public var adminTokenFile: String?
    /// The key sealing secret environment values: base64 of 32 bytes, or a file (nil:
    /// `secrets.key` beside the database, made on the first start).
    public var secretsKey: String?
    public var secretsKeyFile: String?

    /// This node's own folder: the SQLite file's, or `./var` with PostgreSQL (`DatabaseLocation.stateFolder`).
    var databaseFolder: String { databaseLocation.stateFolder }
    /// The admin token file in force.
    public var effectiveAdminTokenFile: String { adminTokenFile ?? databaseFolder + "/admin.token" }
    /// The secrets key file in force.
    public var effectiveSecretsKeyFile: String { secretsKeyFile ?? databaseFolder + "/secrets.key" }
    /// How long a followed output stream (`?follow=true`) may stay silent before a keep-alive
    /// comment goes out, so that proxies do not cut it.
    public var followHeartbeat: Duration = .seconds(15)
    /// How long an `Idempotency-Key` answers a repeat of its request the same (`idempotency_ttl`).
    public var idempotencyTTL: Duration = .seconds(24 * 3600)

    /// This node's name among the nodes sharing a database (`node_name`); nil: the host name
    /// plus the port (`effectiveNodeName`).
    public var nodeName: String?
    /// This node's name in force.
    public var effectiveNodeName: String { nodeName ?? "\(ProcessInfo.processInfo.hostName):\(port)" }

    public init() {}

    /// Every key of the file, with what it takes (also the order of `confine serve --help`).
    public static let keys: [(key: String, env: String, help: String)] = [
        ("listen", "CONFINE_LISTEN", "host:port to bind (default 127.0.0.1:8000)"),
        ("database", "CONFINE_DATABASE",
         "SQLite file, or postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME[?sslmode=…|?host=/socket/folder] shared by every node (default ./var/confine.sqlite)"),
        ("disk_reserve", "CONFINE_DISK_RESERVE",
         "room held back beside the database to finish running executions when its disk fills (default 8MiB; 0: none)"),
        ("policies", "CONFINE_POLICIES", "policies folder (default ./policies)"),
        ("workers", "CONFINE_WORKERS", "executions run at once (default: the number of cores)"),
        ("queue_limit", "CONFINE_QUEUE_LIMIT", "PENDING executions accepted at most (default 10000)"),
        ("max_body_size", "CONFINE_MAX_BODY_SIZE", "largest request body (default 2MiB)"),
        ("max_script_size", "CONFINE_MAX_SCRIPT_SIZE", "largest script (default 1MiB)"),
        ("max_files_bytes", "CONFINE_MAX_FILES_BYTES", "input files of one execution, its job's and its run's together (default 8MiB)"),
        ("max_artifact_bytes", "CONFINE_MAX_ARTIFACT_BYTES", "output files collected from one execution (default 16MiB)"),
        ("max_wait", "CONFINE_MAX_WAIT", "longest wait=true a run may ask (default 5m)"),
        ("idempotency_ttl", "CONFINE_IDEMPOTENCY_TTL", "how long an Idempotency-Key answers a repeat of its request the same (default 24h)"),
        ("idle_timeout", "CONFINE_IDLE_TIMEOUT",
         "a connection with no complete request and no answer pending this long is closed (default 60s)"),
        ("request_timeout", "CONFINE_REQUEST_TIMEOUT",
         "a request's body must arrive within this of its head, else 408 and the connection closes (default 30s)"),
        ("max_connections", "CONFINE_MAX_CONNECTIONS",
         "connections open at once; beyond, an idle one is closed to make room, else 503 (default: the open-file limit less 512, at most 10000)"),
        ("max_connections_per_client", "CONFINE_MAX_CONNECTIONS_PER_CLIENT",
         "connections open at once from one client address (default: a quarter of max_connections, at least 16)"),
        ("shutdown_grace", "CONFINE_SHUTDOWN_GRACE", "time running executions get at shutdown (default 10s)"),
        ("log_level", "CONFINE_LOG_LEVEL", "trace, debug, info (default), notice, warning, error or critical"),
        ("log_format", "CONFINE_LOG_FORMAT", "json, text, or auto (default: text on a terminal, JSON otherwise)"),
        ("sandbox_cpu_weight", "CONFINE_SANDBOX_CPU_WEIGHT", "CPU weight of all sandboxes together, 1-10000 (default 25; the server is 100)"),
        ("spawner_path", "CONFINE_SPAWNER", "the confine-spawner executable sandboxes are born from (default: beside confine)"),
        ("spawner_uid", "CONFINE_SPAWNER_UID",
         "unprivileged host uid the spawner runs as, owner of every sandbox's user namespace (default 65533; not 0, not a sandbox id)"),
        ("spawner_gid", "CONFINE_SPAWNER_GID", "host gid the spawner runs as (default 65533; not 0, not a sandbox id)"),
        ("sandbox_id_first", "CONFINE_SANDBOX_ID_FIRST",
         "first host uid/gid sandboxes' root maps to, one of its own per live sandbox (default 1879048192 = 0x70000000)"),
        ("sandbox_id_count", "CONFINE_SANDBOX_ID_COUNT", "how many host ids sandboxes may take, at most one per live sandbox (default 65536)"),
        ("public_routes", "CONFINE_PUBLIC_ROUTES",
         "routes also open without a token: ready, metrics (docs, openapi and ui are open by default; /health always)"),
        ("private_routes", "CONFINE_PRIVATE_ROUTES", "routes open by default that need a viewer token instead: docs, openapi, ui (default none)"),
        ("public_url", "CONFINE_PUBLIC_URL",
         "the URL clients use, e.g. https://confine.example.com, for the OpenAPI document's servers (default: the request's Host)"),
        ("cors_origins", "CONFINE_CORS_ORIGINS",
         "web origins whose pages may call the API, e.g. [https://ops.example.com], or * for any (default none)"),
        ("admin_token_file", "CONFINE_ADMIN_TOKEN_FILE", "where the first admin token is written (default admin.token beside the database)"),
        ("secrets_key", "CONFINE_SECRETS_KEY", "base64 of 32 bytes sealing secret environment values (default: secrets_key_file)"),
        ("secrets_key_file", "CONFINE_SECRETS_KEY_FILE", "file of the secrets key, made 0600 if missing (default secrets.key beside the database)"),
        ("allow_weaker", "CONFINE_ALLOW_WEAKER",
         "isolation the host may lack: a list of cgroups, seccomp (default none: the start is refused, naming what is missing)"),
        ("node_name", "CONFINE_NODE_NAME",
         "this node's name among the nodes sharing a database, unique to it and kept across restarts (default: the host name plus the port)"),
        ("node_timeout", "CONFINE_NODE_TIMEOUT",
         "a node silent this long is dead and its RUNNING executions end interrupted (default 30s; heartbeats every sixth of it)"),
        ("retention", "", "mapping: keep_per_job, max_age, interval"),
        ("retention.keep_per_job", "CONFINE_RETENTION_KEEP_PER_JOB", "finished executions kept per job"),
        ("retention.max_age", "CONFINE_RETENTION_MAX_AGE", "finished executions kept this long (e.g. 30d)"),
        ("retention.interval", "CONFINE_RETENTION_INTERVAL", "how often retention runs (default 1m)"),
        ("runtimes", "", "mapping: script type → {command: [interpreter, …], script_path}"),
        ("webhooks", "", "mapping: allow_private, retry_for, first_retry_delay"),
        ("webhooks.allow_private", "CONFINE_WEBHOOKS_ALLOW_PRIVATE",
         "true: callbacks may go to loopback, private, link-local and metadata addresses (default false: refused)"),
        ("webhooks.retry_for", "CONFINE_WEBHOOKS_RETRY_FOR", "how long a callback is retried after the execution's end (default 1h)"),
        ("webhooks.first_retry_delay", "CONFINE_WEBHOOKS_FIRST_RETRY_DELAY",
         "the delay before a callback's second attempt, doubling after, 10m at most (default 5s)"),
    ]

    /// Loads `file` (nil: none) with `environment` over it.
    public static func load(file: String?, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(ConfigurationError) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        if let file {
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw ConfigurationError(file: file, key: nil, message: "cannot read the file: \((error as NSError).localizedDescription)")
            }
            try configuration.apply(yaml: text, file: file)
        }
        try configuration.apply(environment: environment)
        let both = configuration.publicRoutes.intersection(configuration.privateRoutes)
        if !both.isEmpty {
            throw ConfigurationError(file: file, key: "private_routes",
                                     message: "\(both.sorted().joined(separator: ", ")) is also in public_routes; name a route in one of them only")
        }
        return configuration
    }

    // MARK: File

    mutating func apply(yaml text: String, file: String) throws(ConfigurationError) {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigurationError(file: file, key: nil, message: "not valid YAML: \(error)")
        }
        guard let root else { return }
        guard let mapping = root.mapping else {
            throw ConfigurationError(file: file, key: nil, message: "the file must be a mapping of keys (listen, database, …)")
        }
        let top = KnownKeys(Self.keys.map(\.key).filter { !$0.contains(".") })
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? "\(keyNode)"
            let fail = { (message: String) in ConfigurationError(file: file, key: key, message: message) }
            guard top.contains(key) else {
                throw fail(top.refusal(of: key))
            }
            if key == "retention" || key == "webhooks" {
                guard let sub = value.mapping else {
                    throw fail(key == "retention" ? "expected a mapping with keep_per_job, max_age, interval"
                                                  : "expected a mapping with allow_private, retry_for, first_retry_delay")
                }
                for (subKey, subValue) in sub {
                    let name = "\(key).\(subKey.string ?? "")"
                    try set(name, Self.scalar(subValue, file: file, key: name), file: file)
                }
            } else if key == "runtimes" {
                try applyRuntimes(value, file: file)
            } else if ["public_routes", "private_routes", "cors_origins"].contains(key), let list = value.sequence {
                let names = list.map { $0.string ?? "" }
                try set(key, names.joined(separator: ","), file: file)
            } else if key == "allow_weaker", let list = value.sequence {
                try set(key, list.map { $0.string ?? "\($0)" }.joined(separator: ","), file: file)
            } else {
                try set(key, Self.scalar(value, file: file, key: key), file: file)
            }
        }
    }

    private static func scalar(_ node: Node, file: String, key: String) throws(ConfigurationError) -> String {
        guard let scalar = node.scalar else {
            throw ConfigurationError(file: file, key: key, message: "expected a single value, not a list or mapping")
        }
        return scalar.string
    }

    private mutating func applyRuntimes(_ node: Node, file: String) throws(ConfigurationError) {
        guard let mapping = node.mapping else {
            throw ConfigurationError(file: file, key: "runtimes", message: "expected a mapping of script type to {command, script_path}")
        }
        for (typeNode, spec) in mapping {
            let type = typeNode.string ?? ""
            let key = "runtimes.\(type)"
            guard type.range(of: #"^[a-z][a-z0-9_-]{0,31}$"#, options: .regularExpression) != nil else {
                throw ConfigurationError(file: file, key: key, message: "a script type is lowercase letters, digits, - and _ (at most 32)")
            }
            guard let fields = spec.mapping else {
                throw ConfigurationError(file: file, key: key, message: "expected {command: [/usr/bin/INTERPRETER, …], script_path: /sandbox/script.EXT}")
            }
            var command: [String]?
            var scriptPath = "/sandbox/script"
            for (fieldNode, value) in fields {
                let field = fieldNode.string ?? ""
                switch field {
                case "command":
                    if let seq = value.sequence {
                        command = seq.compactMap(\.string)
                    } else if let one = value.string {
                        command = one.split(separator: " ").map(String.init)
                    }
                case "script_path":
                    scriptPath = value.string ?? ""
                default:
                    throw ConfigurationError(file: file, key: "\(key).\(field)",
                                             message: KnownKeys(["command", "script_path"]).refusal(of: field))
                }
            }
            guard let command, let first = command.first, first.hasPrefix("/") else {
                throw ConfigurationError(file: file, key: "\(key).command",
                                         message: "expected the interpreter as an absolute path inside the sandbox, e.g. [/usr/bin/python3]")
            }
            guard scriptPath.hasPrefix("/sandbox/"), !scriptPath.contains("..") else {
                throw ConfigurationError(file: file, key: "\(key).script_path", message: "expected a path under /sandbox/, e.g. /sandbox/script.rb")
            }
            engine.runtimes[ScriptType(type)] = Runtime(command: command, scriptPath: scriptPath)
        }
    }

    // MARK: Environment

    mutating func apply(environment: [String: String]) throws(ConfigurationError) {
        for entry in Self.keys where !entry.env.isEmpty {
            if let value = environment[entry.env] { try set(entry.key, value, file: nil, env: entry.env) }
        }
    }

    // MARK: Values

    private mutating func set(_ key: String, _ text: String, file: String?, env: String? = nil) throws(ConfigurationError) {
        let value = ConfigurationValue(text: text, file: file, key: env ?? key)
        switch key {
        case "listen": (host, port) = try value.hostAndPort()
        case "database": database = try value.database()
        case "disk_reserve": diskReserveBytes = value.isZero ? 0 : try value.size(max: 1 << 30)
        case "policies": policies = try value.path("a folder path")
        case "workers": engine.workers = try value.count(1...1024)
        case "queue_limit": engine.queueLimit = try value.count(1...10_000_000)
        case "max_body_size": maxBodyBytes = try value.size(max: 1 << 30)
        case "max_script_size": engine.maxScriptBytes = try value.size(max: 64 << 20)
        case "max_files_bytes": engine.maxFilesBytes = try value.size(max: 1 << 30)
        case "max_artifact_bytes": engine.maxArtifactBytes = try value.size(max: 1 << 30)
        case "max_wait": maxWaitSeconds = try value.duration().seconds
        case "idempotency_ttl": idempotencyTTL = try value.duration()
        case "shutdown_grace": engine.shutdownGrace = try value.duration()
        case "idle_timeout": idleTimeout = try value.duration()
        case "request_timeout": requestTimeout = try value.duration()
        case "max_connections": maxConnections = try value.count(1...1_000_000)
        case "max_connections_per_client": maxConnectionsPerClient = try value.count(1...1_000_000)
        case "sandbox_cpu_weight": sandbox.groupCPUWeight = try value.count(1...10_000)
        case "spawner_path": sandbox.spawnerPath = try value.absolutePath("an absolute path to confine-spawner")
        case "spawner_uid": sandbox.spawnerUID = try value.spawnerID(outside: sandbox.hostIDs)
        case "spawner_gid": sandbox.spawnerGID = try value.spawnerID(outside: sandbox.hostIDs)
        case "sandbox_id_first": sandbox.hostIDFirst = UInt32(try value.count(1...4_294_967_294))
        case "sandbox_id_count": sandbox.hostIDCount = UInt32(try value.count(1...16_777_216))
        case "allow_weaker": allowWeaker = try value.waivableIsolation()
        case "log_level": logLevel = try value.choice(["trace", "debug", "info", "notice", "warning", "error", "critical"])
        case "log_format": logFormat = try value.choice(["json", "text", "auto"], wording: "json, text or auto")
        case "public_routes": publicRoutes = try value.routeSwitches()
        case "private_routes": privateRoutes = try value.routeSwitches(closable: AccessRule.openByDefault)
        case "public_url": publicURL = try value.publicURL()
        case "cors_origins": corsOrigins = try value.origins()
        case "admin_token_file": adminTokenFile = try value.path("a file path")
        case "secrets_key": secretsKey = try value.secretsKey()
        case "secrets_key_file": secretsKeyFile = try value.path("a file path")
        case "node_name":
            let name = try value.path("a node name")
            guard name.count <= 200, !name.contains(where: { $0.isNewline }) else {
                throw value.failure("a node name is one line of at most 200 characters")
            }
            nodeName = name
        case "node_timeout":
            let timeout = try value.duration()
            guard timeout >= .seconds(3) else { throw value.failure("node_timeout must be at least 3s (heartbeats go every sixth of it)") }
            engine.nodeTimeout = timeout
        case "retention.keep_per_job": engine.keepPerJob = try value.count(0...1_000_000_000)
        case "retention.max_age": engine.maxAge = try value.duration()
        case "retention.interval": engine.retentionInterval = try value.duration()
        case "webhooks.allow_private": engine.webhooks.allowPrivate = try value.choice(["true", "false"], wording: "true or false") == "true"
        case "webhooks.retry_for": engine.webhooks.retryFor = try value.duration()
        case "webhooks.first_retry_delay": engine.webhooks.firstRetryDelay = try value.duration()
        default: throw value.failure("unknown key")
        }
    }
}

/// Why the configuration was refused: which file, which key, what is wrong.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public var file: String?
    public var key: String?
    public var message: String

    public var description: String {
        let place = [file, key].compactMap { $0 }.joined(separator: ": ")
        return place.isEmpty ? "configuration: \(message)" : "configuration \(place): \(message)"
    }
}
