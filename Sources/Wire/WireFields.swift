/// The members of a wire type, in declaration order, read off its `Decodable` conformance (no
/// list written a second time): the names a route accepts in a body, and what the test of the
/// API document compares with each schema.
public struct WireField: Sendable, Equatable, CustomStringConvertible {
    /// The member's key on the wire.
    public var name: String
    /// Whether a decoder demands it (not optional in the type).
    public var required: Bool

    public var description: String { required ? name : name + "?" }
}

extension Decodable {
    /// This type's members, in declaration order.
    public static var wireFields: [WireField] {
        let recorder = FieldRecorder()
        _ = try? Self(from: RecordingDecoder(recorder: recorder, depth: 0))
        return recorder.fields
    }

    /// The names of this type's members, in declaration order.
    public static var wireNames: [String] { wireFields.map(\.name) }
}

/// Collects the keys the top-level container of a type is asked for.
private final class FieldRecorder {
    var fields: [WireField] = []

    func note(_ key: any CodingKey, required: Bool, depth: Int) {
        guard depth == 0, !fields.contains(where: { $0.name == key.stringValue }) else { return }
        fields.append(WireField(name: key.stringValue, required: required))
    }
}

/// A decoder that answers every question with an empty value and notes which keys were asked:
/// a type's synthesized `init(from:)` asks for each of its members in order.
private struct RecordingDecoder: Decoder {
    let recorder: FieldRecorder
    let depth: Int
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(Keyed<Key>(recorder: recorder, depth: depth))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { Unkeyed(recorder: recorder, depth: depth) }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(recorder: recorder, depth: depth) }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let recorder: FieldRecorder
        let depth: Int
        var codingPath: [any CodingKey] { [] }
        var allKeys: [Key] { [] }

        func contains(_ key: Key) -> Bool { true }
        func decodeNil(forKey key: Key) throws -> Bool {
            recorder.note(key, required: false, depth: depth)
            return true
        }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            recorder.note(key, required: true, depth: depth)
            return try T(from: RecordingDecoder(recorder: recorder, depth: depth + 1))
        }
        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
            recorder.note(key, required: false, depth: depth)
            return try? T(from: RecordingDecoder(recorder: recorder, depth: depth + 1))
        }
        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            recorder.note(key, required: true, depth: depth)
            return KeyedDecodingContainer(Keyed<NestedKey>(recorder: recorder, depth: depth + 1))
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            recorder.note(key, required: true, depth: depth)
            return Unkeyed(recorder: recorder, depth: depth + 1)
        }
        func superDecoder() throws -> any Decoder { RecordingDecoder(recorder: recorder, depth: depth + 1) }
        func superDecoder(forKey key: Key) throws -> any Decoder { RecordingDecoder(recorder: recorder, depth: depth + 1) }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let recorder: FieldRecorder
        let depth: Int
        var codingPath: [any CodingKey] { [] }
        var count: Int? { 0 }
        var isAtEnd: Bool { true }
        var currentIndex: Int { 0 }

        mutating func decodeNil() throws -> Bool { true }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try T(from: RecordingDecoder(recorder: recorder, depth: depth + 1))
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            KeyedDecodingContainer(Keyed<NestedKey>(recorder: recorder, depth: depth + 1))
        }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { Unkeyed(recorder: recorder, depth: depth + 1) }
        mutating func superDecoder() throws -> any Decoder { RecordingDecoder(recorder: recorder, depth: depth + 1) }
    }

    struct Single: SingleValueDecodingContainer {
        let recorder: FieldRecorder
        let depth: Int
        var codingPath: [any CodingKey] { [] }

        func decodeNil() -> Bool { false }
        func decode(_ type: Bool.Type) throws -> Bool { false }
        func decode(_ type: String.Type) throws -> String { "" }
        func decode(_ type: Double.Type) throws -> Double { 0 }
        func decode(_ type: Float.Type) throws -> Float { 0 }
        func decode(_ type: Int.Type) throws -> Int { 0 }
        func decode(_ type: Int8.Type) throws -> Int8 { 0 }
        func decode(_ type: Int16.Type) throws -> Int16 { 0 }
        func decode(_ type: Int32.Type) throws -> Int32 { 0 }
        func decode(_ type: Int64.Type) throws -> Int64 { 0 }
        func decode(_ type: UInt.Type) throws -> UInt { 0 }
        func decode(_ type: UInt8.Type) throws -> UInt8 { 0 }
        func decode(_ type: UInt16.Type) throws -> UInt16 { 0 }
        func decode(_ type: UInt32.Type) throws -> UInt32 { 0 }
        func decode(_ type: UInt64.Type) throws -> UInt64 { 0 }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: RecordingDecoder(recorder: recorder, depth: depth + 1)) }
    }
}
