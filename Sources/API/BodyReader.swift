import Foundation
import HumanText
import Sandbox

/// Reads a JSON object of a request body field by field, so that every refusal names the
/// field, what was expected and what came: `script_type: expected a string, got a number`.
/// Keys the route does not know are refused (a typo such as `concurency` is never silently
/// ignored), with a suggestion when one is close. A null value counts as absent.
struct BodyReader {
    let members: [String: JSON]
    /// The key path of this object inside the body ("" for the body itself).
    let path: String

    init(_ json: JSON, path: String = "", allowed: [String]) throws(Problem) {
        guard case .object(let pairs) = json else {
            throw .validation(path.isEmpty ? nil : path,
                              "\(path.isEmpty ? "the request body" : path) must be a JSON object, not \(json.kind)")
        }
        var members: [String: JSON] = [:]
        for (key, value) in pairs { members[key] = value }
        self.members = members
        self.path = path
        let known = KnownKeys(allowed)
        for key in known.unknown(in: members.keys.sorted()) {
            throw .validation(field(key), known.refusal(of: key, noun: "field", shown: "\"\(field(key))\"", listing: "the fields are"))
        }
    }

    func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func value(_ key: String) -> JSON? {
        guard let value = members[key], value != .null else { return nil }
        return value
    }

    private func mismatch(_ key: String, _ expected: String, _ got: JSON) -> Problem {
        .validation(field(key), "\(field(key)): expected \(expected), got \(got.kind)")
    }

    func has(_ key: String) -> Bool { value(key) != nil }

    func string(_ key: String) throws(Problem) -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let s) = value else { throw mismatch(key, "a string", value) }
        return s
    }

    func requiredString(_ key: String) throws(Problem) -> String {
        guard let s = try string(key) else { throw .validation(field(key), "\(field(key)) is required") }
        return s
    }

    func bool(_ key: String) throws(Problem) -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let b) = value else { throw mismatch(key, "true or false", value) }
        return b
    }

    func number(_ key: String) throws(Problem) -> Double? {
        guard let value = value(key) else { return nil }
        guard case .number(let n) = value else { throw mismatch(key, "a number", value) }
        return n
    }

    func integer(_ key: String, in range: ClosedRange<Int>) throws(Problem) -> Int? {
        guard let n = try number(key) else { return nil }
        guard n.rounded() == n, n >= Double(range.lowerBound), n <= Double(range.upperBound) else {
            throw .validation(field(key), "\(field(key)): expected an integer from \(range.lowerBound) to \(range.upperBound), got \(n)")
        }
        return Int(n)
    }

    func strings(_ key: String) throws(Problem) -> [String]? {
        guard let value = value(key) else { return nil }
        guard case .array(let items) = value else { throw mismatch(key, "an array of strings", value) }
        var out: [String] = []
        for (i, item) in items.enumerated() {
            guard case .string(let s) = item else {
                throw .validation("\(field(key))[\(i)]", "\(field(key))[\(i)]: expected a string, got \(item.kind)")
            }
            out.append(s)
        }
        return out
    }

    /// An object of string values (environment variables).
    func stringMap(_ key: String) throws(Problem) -> [String: String]? {
        guard let value = value(key) else { return nil }
        guard case .object(let pairs) = value else { throw mismatch(key, "an object of strings", value) }
        var out: [String: String] = [:]
        for (name, item) in pairs {
            guard case .string(let s) = item else {
                throw .validation("\(field(key)).\(name)", "\(field(key)).\(name): expected a string, got \(item.kind)")
            }
            out[name] = s
        }
        return out
    }

    /// An object of string or null values (secret variables patched: null removes one).
    func nullableStringMap(_ key: String) throws(Problem) -> [String: String?]? {
        guard let value = value(key) else { return nil }
        guard case .object(let pairs) = value else { throw mismatch(key, "an object of strings or nulls", value) }
        var out: [String: String?] = [:]
        for (name, item) in pairs {
            switch item {
            case .string(let s): out[name] = .some(s)
            case .null: out[name] = .some(nil)
            default: throw .validation("\(field(key)).\(name)", "\(field(key)).\(name): expected a string or null, got \(item.kind)")
            }
        }
        return out
    }

    /// A limits object (`{"memory": "64MiB", "processes": 10}`) as `name=value` texts, each
    /// checked by the policy parser so that its message names the limit.
    func limits(_ key: String) throws(Problem) -> [String]? {
        guard let value = value(key) else { return nil }
        guard case .object(let pairs) = value else { throw mismatch(key, "an object of limits", value) }
        let names = KnownKeys(LimitName.allCases.map(\.rawValue))
        var texts: [String] = []
        for (name, item) in pairs {
            let where_ = "\(field(key)).\(name)"
            guard names.contains(name) else {
                throw .validation(where_, names.refusal(of: name, noun: "limit", shown: "\"\(name)\"", listing: "limits are"))
            }
            let text: String
            switch item {
            case .string(let s): text = "\(name)=\(s)"
            case .number(let n): text = n.rounded() == n && abs(n) < 9e15 ? "\(name)=\(Int64(n))" : "\(name)=\(n)"
            default: throw .validation(where_, "\(where_): expected a string such as \"64MiB\" or \"2s\", or a number, got \(item.kind)")
            }
            do {
                _ = try LimitOverrides(parsing: [text])
            } catch {
                throw .validation(where_, "\(where_): \(error.description)")
            }
            texts.append(text)
        }
        return texts.sorted()
    }
}
