/// A policy's effective values (`Policy`): every section of the policy file, in the file's
/// order, with its name and its YAML rendering. Limits are strings in human units, nil where
/// unlimited; the server answers `GET /policies` and `GET /policies/{name}` with this type.
public struct WirePolicy: Codable, Sendable, Equatable {
    public var name: String
    public var description: String?
    /// Every limit as a string, nil where unlimited.
    public var limits: [String: String?]
    public var overridable: [String]
    public var network: String
    public var output: WirePolicyOutput
    public var hostname: String
    public var filesystem: WirePolicyFilesystem
    public var seccomp: WirePolicySeccomp
    public var environment: WirePolicyEnvironment
    /// The effective policy as YAML.
    public var yaml: String

    public init(name: String, description: String?, limits: [String: String?], overridable: [String], network: String,
                output: WirePolicyOutput, hostname: String, filesystem: WirePolicyFilesystem, seccomp: WirePolicySeccomp,
                environment: WirePolicyEnvironment, yaml: String) {
        self.name = name
        self.description = description
        self.limits = limits
        self.overridable = overridable
        self.network = network
        self.output = output
        self.hostname = hostname
        self.filesystem = filesystem
        self.seccomp = seccomp
        self.environment = environment
        self.yaml = yaml
    }
}

/// A policy's `output` section (`PolicyOutput`).
public struct WirePolicyOutput: Codable, Sendable, Equatable {
    public var on_overflow: String

    public init(on_overflow: String) { self.on_overflow = on_overflow }
}

/// A policy's `filesystem` section (`PolicyFilesystem`).
public struct WirePolicyFilesystem: Codable, Sendable, Equatable {
    public var read_only: [WirePolicyMount]
    public var tmpfs: [WirePolicyTmpfs]
    public var devices: [String]
    public var workdir: String

    public init(read_only: [WirePolicyMount], tmpfs: [WirePolicyTmpfs], devices: [String], workdir: String) {
        self.read_only = read_only
        self.tmpfs = tmpfs
        self.devices = devices
        self.workdir = workdir
    }
}

/// One read-only mount, as the policy file writes it: a path bound at the same place (a string),
/// or an object (`PolicyBindMount`) for an optional path or a source bound elsewhere.
public enum WirePolicyMount: Codable, Sendable, Equatable {
    case path(String)
    case bind(WirePolicyBindMount)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let path = try? container.decode(String.self) {
            self = .path(path)
        } else {
            self = .bind(try container.decode(WirePolicyBindMount.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .path(let path): try container.encode(path)
        case .bind(let mount): try container.encode(mount)
        }
    }
}

/// A read-only mount written as an object (`PolicyBindMount`): `path` (with `optional`), or
/// `source` bound at `target`; members without a value are left out.
public struct WirePolicyBindMount: Codable, Sendable, Equatable, WireAnswer {
    public var path: String?
    public var source: String?
    public var target: String?
    public var optional: Bool?

    public static let absentWhenNil: Set<String> = ["path", "source", "target", "optional"]

    public init(path: String? = nil, source: String? = nil, target: String? = nil, optional: Bool? = nil) {
        self.path = path
        self.source = source
        self.target = target
        self.optional = optional
    }
}

/// A tmpfs mount of a policy (`PolicyTmpfs`): where, and its size in human units.
public struct WirePolicyTmpfs: Codable, Sendable, Equatable {
    public var path: String
    public var size: String

    public init(path: String, size: String) {
        self.path = path
        self.size = size
    }
}

/// A policy's `seccomp` section (`PolicySeccomp`); `errno` only with the `errno` action.
public struct WirePolicySeccomp: Codable, Sendable, Equatable, WireAnswer {
    public var mode: String
    public var action: String
    public var errno: String?
    public var deny: [String]
    public var allow: [String]
    public var socket_families: [String]

    public static let absentWhenNil: Set<String> = ["errno"]

    public init(mode: String, action: String, errno: String?, deny: [String], allow: [String], socket_families: [String]) {
        self.mode = mode
        self.action = action
        self.errno = errno
        self.deny = deny
        self.allow = allow
        self.socket_families = socket_families
    }
}

/// A policy's `environment` section (`PolicyEnvironment`): variables set, and host variables passed.
public struct WirePolicyEnvironment: Codable, Sendable, Equatable {
    public var set: [String: String]
    public var allow: [String]

    public init(set: [String: String], allow: [String]) {
        self.set = set
        self.allow = allow
    }
}

/// The answer of `POST /policies/reload` (`PolicyReload`): the policies in force, and their folder.
public struct WirePolicyReload: Codable, Sendable, Equatable {
    public var policies: [String]
    public var directory: String

    public init(policies: [String], directory: String) {
        self.policies = policies
        self.directory = directory
    }
}
