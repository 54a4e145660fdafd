import HumanText
/// Per-run limit overrides: at most one value per limit, each meant to tighten the policy.
///
/// Build one in code (`overrides[.memory] = .bytes(128 << 20)`) or from `--limit` texts
/// (`LimitOverrides(parsing: ["memory=128MiB", "wall_time=2s"])`). `Policy.applying(_:)` is the
/// only way they take effect, and it refuses anything the policy does not allow.
public struct LimitOverrides: Sendable, Equatable, CustomStringConvertible {
    /// The overridden limits; a limit absent here keeps the policy's value.
    public var values: [LimitName: LimitValue]

    /// No overrides.
    public init(_ values: [LimitName: LimitValue] = [:]) {
        self.values = values
    }

    /// Parses `name=value` texts such as `memory=128MiB`, `wall_time=2s`, `cpu_quota=0.5`.
    /// Throws `PolicyError.invalidOverride` for an unknown limit (with a suggestion), a
    /// malformed or out-of-range value, or a limit given twice.
    public init(parsing texts: [String]) throws(PolicyError) {
        self.init()
        for text in texts { try add(parsing: text) }
    }

    /// The value for one limit, nil when not overridden.
    public subscript(name: LimitName) -> LimitValue? {
        get { values[name] }
        set { values[name] = newValue }
    }

    /// True when nothing is overridden.
    public var isEmpty: Bool { values.isEmpty }

    /// `memory=128MiB wall_time=2s`, in limit order; parses back with `init(parsing:)`
    /// after splitting on spaces.
    public var description: String {
        values.keys.sorted().map { "\($0.rawValue)=\(values[$0]!)" }.joined(separator: " ")
    }

    /// Parses one `name=value` text and adds it.
    public mutating func add(parsing text: String) throws(PolicyError) {
        guard let eq = text.firstIndex(of: "=") else {
            throw .invalidOverride(limit: nil, text: text, message: "expected name=value, such as memory=128MiB or wall_time=2s")
        }
        let rawName = HumanUnits.trim(String(text[..<eq]))
        let rawValue = String(text[text.index(after: eq)...])
        guard let name = LimitName(rawValue: rawName) else {
            let names = KnownKeys(LimitName.allCases.map(\.rawValue))
            throw .invalidOverride(limit: nil, text: text,
                                   message: names.refusal(of: rawName, noun: "limit", shown: HumanUnits.quoted(rawName), listing: "limits are"))
        }
        guard values[name] == nil else {
            throw .invalidOverride(limit: name, text: text, message: "\(name.rawValue) is given more than once")
        }
        do {
            values[name] = try name.parse(rawValue)
        } catch {
            throw .invalidOverride(limit: name, text: text, message: error.message)
        }
    }
}

extension Policy {
    /// This policy with `overrides` applied.
    ///
    /// Refuses (throws, naming the limit) an override of a limit the policy does not list in
    /// `overridable` (`PolicyError.overrideNotAllowed`), one looser than the policy's value
    /// (`.overrideLooser`: higher, or for cpu_quota higher or `none`), and one that is out of
    /// bounds or of the wrong kind (`.invalidOverride`). An equal value is accepted.
    ///
    /// tmpfs pages count against the memory limit, so a tighter memory limit also caps each
    /// tmpfs at the new limit (a tmpfs larger than memory could never be filled anyway).
    public func applying(_ overrides: LimitOverrides) throws(PolicyError) -> Policy {
        var result = self
        for name in overrides.values.keys.sorted() {
            let value = overrides.values[name]!
            guard overridable.contains(name) else {
                throw .overrideNotAllowed(policy: self.name, limit: name, overridable: overridable.sorted())
            }
            if let problem = name.check(value) {
                throw .invalidOverride(limit: name, text: "\(name.rawValue)=\(value)", message: problem)
            }
            let current = limits[name]
            if value.isLooser(than: current) {
                throw .overrideLooser(policy: self.name, limit: name, requested: value.description, policyValue: current.description)
            }
            result.limits[name] = value
        }
        for i in result.filesystem.tmpfs.indices where result.filesystem.tmpfs[i].sizeBytes > result.limits.memoryBytes {
            result.filesystem.tmpfs[i].sizeBytes = result.limits.memoryBytes
        }
        return result
    }
}
