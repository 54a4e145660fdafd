import HumanText
/// The value of one limit, in the limit's own kind: a duration, a size, a count or CPU cores.
///
/// Promises: `LimitName.parse(_:)` produces the kind that limit takes; `description` prints
/// human units (`256MiB`, `1.5s`, `none`) that `parse` reads back to the same value.
public enum LimitValue: Sendable, Equatable, CustomStringConvertible {
    /// wall_time, cpu_time.
    case milliseconds(Int64)
    /// memory, stdout, stderr, file_size, stack, message_queue_bytes.
    case bytes(UInt64)
    /// processes, open_files, cpu_weight, inotify_instances, inotify_watches, pending_signals.
    case count(Int)
    /// cpu_quota; nil: no quota.
    case cores(Double?)

    public var description: String {
        switch self {
        case .milliseconds(let ms): return HumanUnits.formatMilliseconds(ms)
        case .bytes(let b): return HumanUnits.formatBytes(b)
        case .count(let n): return String(n)
        case .cores(let c): return c.map { String($0) } ?? "none"
        }
    }

    /// Whether `self` would loosen a limit currently at `current` (same kind). Lower is tighter
    /// for every limit (a lower cpu_weight gets less CPU); for cpu_quota, no quota is loosest.
    public func isLooser(than current: LimitValue) -> Bool {
        switch (self, current) {
        case let (.milliseconds(a), .milliseconds(b)): return a > b
        case let (.bytes(a), .bytes(b)): return a > b
        case let (.count(a), .count(b)): return a > b
        case let (.cores(a), .cores(b)):
            guard let b else { return false }      // no quota now: anything is at least as tight
            guard let a else { return true }       // removing a quota
            return a > b
        default: return true
        }
    }

    /// Whether this is the kind of value `name` takes.
    func isKind(of name: LimitName) -> Bool {
        switch (self, name.kind) {
        case (.milliseconds, .milliseconds), (.bytes, .bytes), (.count, .count), (.cores, .cores): return true
        default: return false
        }
    }
}

extension LimitName {
    /// The kind of value a limit takes.
    enum Kind { case milliseconds, bytes, count, cores }

    var kind: Kind {
        switch self {
        case .wallTime, .cpuTime: return .milliseconds
        case .memory, .stdout, .stderr, .fileSize, .stack, .messageQueueBytes: return .bytes
        case .processes, .openFiles, .cpuWeight, .inotifyInstances, .inotifyWatches, .pendingSignals: return .count
        case .cpuQuota: return .cores
        }
    }

    /// What a value of this limit looks like, for messages.
    var expectation: String {
        switch kind {
        case .milliseconds: return HumanUnits.durationExample
        case .bytes: return HumanUnits.sizeExample
        case .count: return "a whole number"
        case .cores: return "a number of CPU cores such as 1.0 or 0.5, or none"
        }
    }

    /// Parses a value written for this limit (`256MiB`, `10s`, `64`, `1.5`, `none`) and checks it
    /// against the limit's bounds (`check`).
    public func parse(_ text: String) throws(HumanUnits.ParseError) -> LimitValue {
        let value: LimitValue
        switch kind {
        case .milliseconds: value = .milliseconds(try HumanUnits.parseMilliseconds(text))
        case .bytes: value = .bytes(try HumanUnits.parseBytes(text))
        case .count:
            let t = HumanUnits.trim(text)
            if t.hasPrefix("-"), Int(t.dropFirst()) != nil {
                throw HumanUnits.ParseError(message: "must not be negative, got \(HumanUnits.quoted(text))")
            }
            guard !t.isEmpty, t.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw HumanUnits.ParseError(message: "expected \(expectation), got \(HumanUnits.quoted(text))")
            }
            guard let n = Int(t) else { throw HumanUnits.ParseError(message: "\(HumanUnits.quoted(text)) is too large") }
            value = .count(n)
        case .cores:
            let t = HumanUnits.trim(text)
            if t == "none" {
                value = .cores(nil)
            } else {
                if t.hasPrefix("-"), Double(t.dropFirst()) != nil {
                    throw HumanUnits.ParseError(message: "must be greater than 0 (or none for no quota), got \(HumanUnits.quoted(text))")
                }
                guard !t.isEmpty, t.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
                      let d = Double(t), d.isFinite else {
                    throw HumanUnits.ParseError(message: "expected \(expectation), got \(HumanUnits.quoted(text))")
                }
                value = .cores(d)
            }
        }
        if let problem = check(value) { throw HumanUnits.ParseError(message: problem) }
        return value
    }

    /// Why `value` is out of bounds for this limit, or nil when it is acceptable.
    ///
    /// Bounds: wall_time and cpu_time 1ms…24h; memory ≥ 1MiB; processes 1…4194304;
    /// stdout/stderr ≤ 1GiB (captured output is kept); open_files 8…1048576 (the kernel's
    /// default nr_open); stack ≥ 128KiB; cpu_quota 0.01…1024 cores or none (0.01 is the
    /// smallest quota cgroups accept; the upper bound does not depend on this host, so a
    /// policy loads the same everywhere); cpu_weight 1…10000 (the cgroup v2 range);
    /// inotify_instances 0…65536, inotify_watches 0…4194304, message_queue_bytes ≤ 1GiB,
    /// pending_signals 0…4194304 (0 refuses the kind of object altogether).
    public func check(_ value: LimitValue) -> String? {
        guard value.isKind(of: self) else { return "expected \(expectation), got \(value)" }
        func range<T: Comparable>(_ v: T, _ lo: T, _ hi: T, _ show: (T) -> String, _ note: String = "") -> String? {
            if v < lo { return "must be at least \(show(lo))\(note), got \(show(v))" }
            if v > hi { return "must be at most \(show(hi))\(note), got \(show(v))" }
            return nil
        }
        let ms = HumanUnits.formatMilliseconds, size = HumanUnits.formatBytes
        let maxSize = UInt64(Int64.max)
        switch (self, value) {
        case (.wallTime, .milliseconds(let v)), (.cpuTime, .milliseconds(let v)):
            return range(v, 1, 24 * 3_600_000, ms)
        case (.memory, .bytes(let v)): return range(v, 1 << 20, maxSize, size)
        case (.stdout, .bytes(let v)), (.stderr, .bytes(let v)):
            return range(v, 0, 1 << 30, size, " (captured output is kept in full)")
        case (.fileSize, .bytes(let v)): return range(v, 0, maxSize, size)
        case (.stack, .bytes(let v)): return range(v, 128 << 10, maxSize, size)
        case (.processes, .count(let v)): return range(v, 1, 4_194_304, String.init)
        case (.openFiles, .count(let v)): return range(v, 8, 1_048_576, String.init)
        case (.cpuWeight, .count(let v)): return range(v, 1, 10_000, String.init)
        case (.inotifyInstances, .count(let v)): return range(v, 0, 65_536, String.init)
        case (.inotifyWatches, .count(let v)), (.pendingSignals, .count(let v)): return range(v, 0, 4_194_304, String.init)
        case (.messageQueueBytes, .bytes(let v)): return range(v, 0, 1 << 30, size)
        case (.cpuQuota, .cores(let v)):
            guard let v else { return nil }
            return range(v, 0.01, 1024, { $0 == $0.rounded() ? String(Int($0)) : String($0) }, " cores")
        default: return "expected \(expectation), got \(value)"
        }
    }
}

extension Limits {
    /// The value of one limit, by name.
    public subscript(name: LimitName) -> LimitValue {
        get {
            switch name {
            case .wallTime: return .milliseconds(wallTimeMs)
            case .cpuTime: return .milliseconds(cpuTimeMs)
            case .memory: return .bytes(memoryBytes)
            case .processes: return .count(processes)
            case .stdout: return .bytes(stdoutBytes)
            case .stderr: return .bytes(stderrBytes)
            case .openFiles: return .count(openFiles)
            case .fileSize: return .bytes(fileSizeBytes)
            case .stack: return .bytes(stackBytes)
            case .cpuQuota: return .cores(cpuQuota)
            case .cpuWeight: return .count(cpuWeight)
            case .inotifyInstances: return .count(inotifyInstances)
            case .inotifyWatches: return .count(inotifyWatches)
            case .messageQueueBytes: return .bytes(messageQueueBytes)
            case .pendingSignals: return .count(pendingSignals)
            }
        }
        set {
            // A value of the wrong kind is ignored: `LimitName.check` refuses it beforehand.
            switch (name, newValue) {
            case (.wallTime, .milliseconds(let v)): wallTimeMs = v
            case (.cpuTime, .milliseconds(let v)): cpuTimeMs = v
            case (.memory, .bytes(let v)): memoryBytes = v
            case (.processes, .count(let v)): processes = v
            case (.stdout, .bytes(let v)): stdoutBytes = v
            case (.stderr, .bytes(let v)): stderrBytes = v
            case (.openFiles, .count(let v)): openFiles = v
            case (.fileSize, .bytes(let v)): fileSizeBytes = v
            case (.stack, .bytes(let v)): stackBytes = v
            case (.cpuQuota, .cores(let v)): cpuQuota = v
            case (.cpuWeight, .count(let v)): cpuWeight = v
            case (.inotifyInstances, .count(let v)): inotifyInstances = v
            case (.inotifyWatches, .count(let v)): inotifyWatches = v
            case (.messageQueueBytes, .bytes(let v)): messageQueueBytes = v
            case (.pendingSignals, .count(let v)): pendingSignals = v
            default: assertionFailure("limit \(name.rawValue) cannot take \(newValue)")
            }
        }
    }
}
