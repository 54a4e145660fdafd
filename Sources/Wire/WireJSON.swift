/// A wire type whose document schema leaves some members out when they have no value (not in
/// the schema's `required`): those are absent when nil. Every other optional member of a wire
/// type is written as `null` when nil, as the document's required nullable members are.
public protocol WireAnswer: Encodable {
    /// The members written only when they have a value.
    static var absentWhenNil: Set<String> { get }
}

/// The server's JSON writer for the wire types: compact UTF-8, members in the order the type
/// declares them (its synthesized `encode(to:)` asks for them in that order), a nil member
/// written as `null` unless the type lists it in `WireAnswer.absentWhenNil`, map keys sorted
/// (one answer, one text), integers as integers. It writes bytes straight into one buffer:
/// no tree of values is built first.
public enum WireJSON {
    /// `value` as JSON.
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let writer = WireJSONWriter(marking: [])
        try writer.value(value)
        return writer.bytes.array
    }

    /// `value` as JSON, and where the values of the top-level members named in `marking` were
    /// written (the byte ranges of their values, in the order written): what lets an answer
    /// replace a member by bytes it streams (an execution's output).
    public static func encode<T: Encodable>(_ value: T, marking: Set<String>) throws -> (bytes: [UInt8], marks: [(name: String, range: Range<Int>)]) {
        let writer = WireJSONWriter(marking: marking)
        try writer.value(value)
        return (writer.bytes.array, writer.marks)
    }

    /// Appends `text` as a JSON string (quotes included): `"`, `\` and control bytes escaped,
    /// DEL as `\u007f`, everything else as its UTF-8 bytes.
    public static func appendString(_ text: String, to out: inout [UInt8]) { writeString(text, to: &out) }

    /// Appends the content of a JSON string for `text` (without the quotes).
    public static func appendStringContent(_ text: String, to out: inout [UInt8]) { writeContent(text, to: &out) }

    /// Appends the content of a JSON string for UTF-8 `bytes` (without the quotes).
    public static func appendEscaped(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) { escape(bytes, to: &out) }

    /// Appends an integer in decimal.
    public static func appendInteger<I: BinaryInteger>(_ value: I, to out: inout [UInt8]) {
        if let signed = Int64(exactly: value) {
            integer(signed, to: &out)
        } else {
            unsigned(UInt64(value), to: &out)
        }
    }

    /// Appends a number: integral values within ±2^53 as integers, others as Swift writes
    /// them, non-finite ones as `null` (JSON has no infinity).
    public static func appendNumber(_ value: Double, to out: inout [UInt8]) { number(value, to: &out) }

    // MARK: The writing itself, into any byte sink

    static func writeString<Sink: JSONSink>(_ text: String, to out: inout Sink) {
        out.append(UInt8(ascii: "\""))
        writeContent(text, to: &out)
        out.append(UInt8(ascii: "\""))
    }

    static func writeContent<Sink: JSONSink>(_ text: String, to out: inout Sink) {
        let done: Void? = text.utf8.withContiguousStorageIfAvailable { escape($0, to: &out) }
        if done == nil {
            var text = text
            text.withUTF8 { escape($0, to: &out) }
        }
    }

    /// Appends `"key":` for a member's key.
    static func writeKey<Sink: JSONSink>(_ key: String, to out: inout Sink) {
        out.append(UInt8(ascii: "\""))
        writeContent(key, to: &out)
        out.append(UInt8(ascii: "\""))
        out.append(UInt8(ascii: ":"))
    }

    static func escape<Sink: JSONSink>(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout Sink) {
        // Runs of bytes that need no escaping are copied in one go.
        var runStart = 0
        var i = 0
        let count = bytes.count
        while i < count {
            let byte = bytes[i]
            if escapes(byte) {
                if runStart < i { out.append(UnsafeBufferPointer(rebasing: bytes[runStart..<i])) }
                out.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "\n"): out.append(UInt8(ascii: "n"))
                case UInt8(ascii: "\r"): out.append(UInt8(ascii: "r"))
                case UInt8(ascii: "\t"): out.append(UInt8(ascii: "t"))
                default:
                    for digit in [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hexDigit(byte >> 4), hexDigit(byte & 0xf)] {
                        out.append(digit)
                    }
                }
                runStart = i + 1
            }
            i += 1
        }
        if runStart < count { out.append(UnsafeBufferPointer(rebasing: bytes[runStart..<count])) }
    }

    /// Whether a JSON string cannot hold `byte` as it is: control bytes, `"`, a backslash and DEL.
    @inline(__always)
    static func escapes(_ byte: UInt8) -> Bool { byte < 0x20 || byte == 0x22 || byte == 0x5c || byte == 0x7f }

    static func hexDigit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10 }

    static func integer<Sink: JSONSink>(_ value: Int64, to out: inout Sink) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        unsigned(value.magnitude, to: &out)
    }

    static func unsigned<Sink: JSONSink>(_ value: UInt64, to out: inout Sink) {
        if value < 10 { out.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value)); return }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var rest = value, start = 20
            while rest != 0 {
                start -= 1
                digits[start] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            }
            out.append(UnsafeBufferPointer(rebasing: digits[start..<20]))
        }
    }

    static func number<Sink: JSONSink>(_ value: Double, to out: inout Sink) {
        if value.rounded() == value, abs(value) < 9.0e15 {
            integer(Int64(value), to: &out)
        } else {
            let text = value.isFinite ? "\(value)" : "null"
            for byte in text.utf8 { out.append(byte) }
        }
    }
}

/// Where JSON bytes go: an array (the helpers other modules call) or the writer's buffer.
protocol JSONSink {
    mutating func append(_ byte: UInt8)
    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>)
}

extension Array: JSONSink where Element == UInt8 {
    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) { append(contentsOf: bytes) }
}

/// The writer's bytes: a buffer grown by doubling and appended to without an array's
/// uniqueness and capacity checks per byte (they were a third of an answer's encoding).
struct JSONBuffer: JSONSink {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    /// Frees the storage; the buffer is not used after.
    func free() { base.deallocate() }

    @inline(__always)
    private mutating func reserve(_ more: Int) {
        guard count + more > capacity else { return }
        var grown = capacity * 2
        while grown < count + more { grown *= 2 }
        let moved = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
        moved.update(from: base, count: count)
        base.deallocate()
        base = moved
        capacity = grown
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        reserve(bytes.count)
        (base + count).update(from: source, count: bytes.count)
        count += bytes.count
    }

    mutating func append(_ text: StaticString) {
        append(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// The bytes written, as an array.
    var array: [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }
}
