/// The `Encoder` behind `WireJSON`: writes each value as its type's `encode(to:)` hands it
/// over. A container opened by an `encode(to:)` is closed when that call returns (a value's
/// encoding opens at most one container of its own; nested values are written through `value`).
final class WireJSONWriter: Encoder {
    // Unchecked: the writer is used by one encoding on one thread, and the dynamic exclusivity
    // checks of a class's stored arrays were a fifth of its time.
    @exclusivity(unchecked) var bytes = JSONBuffer(capacity: 1024)
    /// The closing bytes of the containers open now, innermost last.
    @exclusivity(unchecked) private var closers: [UInt8] = []
    /// The members absent when nil of the value whose `encode(to:)` runs now.
    private var absentForNext: Set<String> = []
    let marking: Set<String>
    @exclusivity(unchecked) var marks: [(name: String, range: Range<Int>)] = []

    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(marking: Set<String>) {
        self.marking = marking
    }

    deinit { bytes.free() }

    /// Writes any encodable value.
    func value<T: Encodable>(_ value: T) throws {
        // The common types by their metatype (a pointer comparison), before any dynamic cast.
        if T.self == String.self { return string(unsafeBitCast(value, to: String.self)) }
        if T.self == [String].self { return strings(unsafeBitCast(value, to: [String].self)) }
        switch value {
        case let map as any SortedWireMap: try map.write(to: self)
        default:
            let depth = closers.count, written = bytes.count
            absentForNext = (T.self as? any WireAnswer.Type)?.absentWhenNil ?? []
            try value.encode(to: self)
            if bytes.count == written { null() }  // encoded nothing at all
            while closers.count > depth { bytes.append(closers.removeLast()) }
        }
    }

    func strings(_ texts: [String]) {
        bytes.append(UInt8(ascii: "["))
        for (i, text) in texts.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            string(text)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    func open(_ opener: UInt8, _ closer: UInt8) {
        bytes.append(opener)
        closers.append(closer)
    }

    /// Whether a keyed container at this depth is the top-level value's (where marks are taken).
    var isTopLevel: Bool { closers.count == 1 }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        open(UInt8(ascii: "{"), UInt8(ascii: "}"))
        let absent = absentForNext
        absentForNext = []
        return KeyedEncodingContainer(Keyed<Key>(writer: self, absent: absent, marks: isTopLevel && !marking.isEmpty))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        open(UInt8(ascii: "["), UInt8(ascii: "]"))
        return Unkeyed(writer: self)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { Single(writer: self) }

    // MARK: Scalars

    func null() { bytes.append("null") }
    func bool(_ value: Bool) { bytes.append(value ? "true" : "false") }
    func integer(_ value: Int64) { WireJSON.integer(value, to: &bytes) }
    func integer(_ value: UInt64) { WireJSON.unsigned(value, to: &bytes) }
    func integer(_ value: Int) { WireJSON.integer(Int64(value), to: &bytes) }
    func integer(_ value: Int32) { WireJSON.integer(Int64(value), to: &bytes) }
    func integer(_ value: Int16) { WireJSON.integer(Int64(value), to: &bytes) }
    func integer(_ value: Int8) { WireJSON.integer(Int64(value), to: &bytes) }
    func integer(_ value: UInt) { WireJSON.unsigned(UInt64(value), to: &bytes) }
    func integer(_ value: UInt32) { WireJSON.unsigned(UInt64(value), to: &bytes) }
    func integer(_ value: UInt16) { WireJSON.unsigned(UInt64(value), to: &bytes) }
    func integer(_ value: UInt8) { WireJSON.unsigned(UInt64(value), to: &bytes) }
    func number(_ value: Double) { WireJSON.number(value, to: &bytes) }
    func string(_ value: String) { WireJSON.writeString(value, to: &bytes) }

    // MARK: Containers

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let writer: WireJSONWriter
        let absent: Set<String>
        let marks: Bool
        var count = 0
        var codingPath: [any CodingKey] { [] }

        /// Writes the member's key; the value follows, then `end` with what this returned.
        private mutating func begin(_ key: Key) -> (name: String, start: Int)? {
            if count > 0 { writer.bytes.append(UInt8(ascii: ",")) }
            count += 1
            let name = key.stringValue
            WireJSON.writeKey(name, to: &writer.bytes)
            guard marks, writer.marking.contains(name) else { return nil }
            return (name, writer.bytes.count)
        }

        /// Records where a marked member's value was written.
        private func end(_ mark: (name: String, start: Int)?) {
            guard let mark else { return }
            writer.marks.append((mark.name, mark.start..<writer.bytes.count))
        }

        /// A nil member: `null`, or nothing when the type lists it as absent when nil.
        private mutating func missing(_ key: Key) {
            guard !absent.contains(key.stringValue) else { return }
            encodeNil(forKey: key)
        }

        mutating func encodeNil(forKey key: Key) { let mark = begin(key); writer.null(); end(mark) }
        mutating func encode(_ value: Bool, forKey key: Key) { let mark = begin(key); writer.bool(value); end(mark) }
        mutating func encode(_ value: String, forKey key: Key) { let mark = begin(key); writer.string(value); end(mark) }
        mutating func encode(_ value: Double, forKey key: Key) { let mark = begin(key); writer.number(value); end(mark) }
        mutating func encode(_ value: Float, forKey key: Key) { let mark = begin(key); writer.number(Double(value)); end(mark) }
        mutating func encode(_ value: Int, forKey key: Key) { let mark = begin(key); writer.integer(value); end(mark) }
        mutating func encode(_ value: Int8, forKey key: Key) { let mark = begin(key); writer.integer(value); end(mark) }
        mutating func encode(_ value: Int16, forKey key: Key) { let mark = begin(key); writer.integer(value); end(mark) }
        mutating func encode(_ value: Int32, forKey key: Key) { let mark = begin(key); writer.integer(value); end(mark) }
        mutating func encode(_ value: Int64, forKey key: Key) { let mark = begin(key); writer.integer(value); end(mark) }
        mutating func encode(_ value: UInt, forKey key: Key) { let mark = begin(key); writer.integer(value); end(mark) }
        mutating func encode(_ value: UInt8, forKey key: Key) { let mark = begin(key); writer.integer(value); end(mark) }
        mutating func encode(_ value: UInt16, forKey key: Key) { let mark = begin(key); writer.integer(value); end(mark) }
        mutating func encode(_ value: UInt32, forKey key: Key) { let mark = begin(key); writer.integer(value); end(mark) }
        mutating func encode(_ value: UInt64, forKey key: Key) { let mark = begin(key); writer.integer(value); end(mark) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { let mark = begin(key); try writer.value(value); end(mark) }

        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) { if let value { encode(value, forKey: key) } else { missing(key) } }
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) { if let value { encode(value, forKey: key) } else { missing(key) } }
        mutating func encodeIfPresent(_ value: Double?, forKey key: Key) { if let value { encode(value, forKey: key) } else { missing(key) } }
        mutating func encodeIfPresent(_ value: Float?, forKey key: Key) { if let value { encode(value, forKey: key) } else { missing(key) } }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) { if let value { encode(value, forKey: key) } else { missing(key) } }
        mutating func encodeIfPresent(_ value: Int8?, forKey key: Key) { if let value { encode(value, forKey: key) } else { missing(key) } }
        mutating func encodeIfPresent(_ value: Int16?, forKey key: Key) { if let value { encode(value, forKey: key) } else { missing(key) } }
        mutating func encodeIfPresent(_ value: Int32?, forKey key: Key) { if let value { encode(value, forKey: key) } else { missing(key) } }
        mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) { if let value { encode(value, forKey: key) } else { missing(key) } }
        mutating func encodeIfPresent(_ value: UInt?, forKey key: Key) { if let value { encode(value, forKey: key) } else { missing(key) } }
        mutating func encodeIfPresent(_ value: UInt8?, forKey key: Key) { if let value { encode(value, forKey: key) } else { missing(key) } }
        mutating func encodeIfPresent(_ value: UInt16?, forKey key: Key) { if let value { encode(value, forKey: key) } else { missing(key) } }
        mutating func encodeIfPresent(_ value: UInt32?, forKey key: Key) { if let value { encode(value, forKey: key) } else { missing(key) } }
        mutating func encodeIfPresent(_ value: UInt64?, forKey key: Key) { if let value { encode(value, forKey: key) } else { missing(key) } }
        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
            if let value { try encode(value, forKey: key) } else { missing(key) }
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            _ = begin(key)
            return writer.container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            _ = begin(key)
            return writer.unkeyedContainer()
        }

        func superEncoder() -> any Encoder { writer }
        func superEncoder(forKey key: Key) -> any Encoder { writer }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let writer: WireJSONWriter
        var count = 0
        var codingPath: [any CodingKey] { [] }

        /// Writes the separator before an element.
        private mutating func separate() {
            if count > 0 { writer.bytes.append(UInt8(ascii: ",")) }
            count += 1
        }

        mutating func encodeNil() { separate(); writer.null() }
        mutating func encode(_ value: Bool) { separate(); writer.bool(value) }
        mutating func encode(_ value: String) { separate(); writer.string(value) }
        mutating func encode(_ value: Double) { separate(); writer.number(value) }
        mutating func encode(_ value: Float) { separate(); writer.number(Double(value)) }
        mutating func encode(_ value: Int) { separate(); writer.integer(value) }
        mutating func encode(_ value: Int8) { separate(); writer.integer(value) }
        mutating func encode(_ value: Int16) { separate(); writer.integer(value) }
        mutating func encode(_ value: Int32) { separate(); writer.integer(value) }
        mutating func encode(_ value: Int64) { separate(); writer.integer(value) }
        mutating func encode(_ value: UInt) { separate(); writer.integer(value) }
        mutating func encode(_ value: UInt8) { separate(); writer.integer(value) }
        mutating func encode(_ value: UInt16) { separate(); writer.integer(value) }
        mutating func encode(_ value: UInt32) { separate(); writer.integer(value) }
        mutating func encode(_ value: UInt64) { separate(); writer.integer(value) }
        mutating func encode<T: Encodable>(_ value: T) throws { separate(); try writer.value(value) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            separate()
            return writer.container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            separate()
            return writer.unkeyedContainer()
        }

        func superEncoder() -> any Encoder { writer }
    }

    struct Single: SingleValueEncodingContainer {
        let writer: WireJSONWriter
        var codingPath: [any CodingKey] { [] }

        func encodeNil() { writer.null() }
        func encode(_ value: Bool) { writer.bool(value) }
        func encode(_ value: String) { writer.string(value) }
        func encode(_ value: Double) { writer.number(value) }
        func encode(_ value: Float) { writer.number(Double(value)) }
        func encode(_ value: Int) { writer.integer(value) }
        func encode(_ value: Int8) { writer.integer(value) }
        func encode(_ value: Int16) { writer.integer(value) }
        func encode(_ value: Int32) { writer.integer(value) }
        func encode(_ value: Int64) { writer.integer(value) }
        func encode(_ value: UInt) { writer.integer(value) }
        func encode(_ value: UInt8) { writer.integer(value) }
        func encode(_ value: UInt16) { writer.integer(value) }
        func encode(_ value: UInt32) { writer.integer(value) }
        func encode(_ value: UInt64) { writer.integer(value) }
        func encode<T: Encodable>(_ value: T) throws { try writer.value(value) }
    }
}

/// A map with string keys, written with its keys sorted (a `Dictionary` has no order of its own).
private protocol SortedWireMap {
    func write(to writer: WireJSONWriter) throws
}

extension Dictionary: SortedWireMap where Key == String, Value: Encodable {
    fileprivate func write(to writer: WireJSONWriter) throws {
        writer.bytes.append(UInt8(ascii: "{"))
        for (i, key) in keys.sorted().enumerated() {
            if i > 0 { writer.bytes.append(UInt8(ascii: ",")) }
            writer.string(key)
            writer.bytes.append(UInt8(ascii: ":"))
            try writer.value(self[key]!)
        }
        writer.bytes.append(UInt8(ascii: "}"))
    }
}
