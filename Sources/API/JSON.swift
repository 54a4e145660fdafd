import Foundation
import Wire

/// A JSON value with ordered object members: what the API writes (every key present, null
/// when empty, in the order the contract lists them) and what it reads request bodies into
/// before validating them field by field.
public indirect enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    public static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    static func int<I: BinaryInteger>(_ value: I) -> JSON { .number(Double(value)) }
    static func optional<T>(_ value: T?, _ transform: (T) -> JSON) -> JSON { value.map(transform) ?? .null }

    /// The keys of an object, in order; nil for anything else.
    var objectKeys: [String]? {
        guard case .object(let members) = self else { return nil }
        return members.map(\.0)
    }

    /// The member named `key` of an object.
    public subscript(key: String) -> JSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    /// What a value is, for error messages: "a string", "an array", …
    var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    // MARK: Writing

    /// Compact UTF-8 JSON.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(to: &out)
        return out
    }

    private func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let n):
            WireJSON.appendNumber(n, to: &out)
        case .string(let s): Self.writeString(s, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func writeString(_ s: String, to out: inout [UInt8]) { WireJSON.appendString(s, to: &out) }

    // MARK: Reading

    /// Parses a request body. Throws a `Problem` (400) saying what is wrong and where.
    static func parse(_ bytes: [UInt8]) throws(Problem) -> JSON {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) {
            throw .malformedJSON("the request body is empty; send a JSON object")
        }
        do {
            return try JSONDecoder().decode(JSON.self, from: Data(bytes))
        } catch let DecodingError.dataCorrupted(context) {
            let underlying = context.underlyingError.map { ": \(($0 as NSError).userInfo[NSDebugDescriptionErrorKey] ?? $0)" } ?? ""
            throw .malformedJSON("the request body is not valid JSON\(underlying)")
        } catch {
            throw .malformedJSON("the request body is not valid JSON: \(error)")
        }
    }
}

extension JSON: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? container.decode(Double.self) {
            self = .number(n)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([JSON].self) {
            self = .array(a)
        } else {
            let d = try container.decode([String: JSON].self)
            self = .object(d.keys.sorted().map { ($0, d[$0]!) })
        }
    }
}
