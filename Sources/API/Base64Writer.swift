import NIOCore

extension ByteBuffer {
    /// Appends the standard base64 (RFC 4648, with padding) of `bytes`, encoded straight into
    /// the buffer: no intermediate `Data` or `String` for the bytes of a followed output.
    mutating func writeBase64<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        if bytes.withContiguousStorageIfAvailable({ writeBase64(contiguous: $0) }) == nil {
            Array(bytes).withUnsafeBufferPointer { writeBase64(contiguous: $0) }
        }
    }

    private mutating func writeBase64(contiguous input: UnsafeBufferPointer<UInt8>) {
        let count = (input.count + 2) / 3 * 4
        guard count > 0 else { return }
        writeWithUnsafeMutableBytes(minimumWritableBytes: count) { out in
            let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
            return alphabet.withUTF8Buffer { table in
                var i = 0, o = 0
                // Whole groups of three bytes.
                while i + 3 <= input.count {
                    let triple = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
                    out[o] = table[Int(triple >> 18)]
                    out[o + 1] = table[Int(triple >> 12 & 63)]
                    out[o + 2] = table[Int(triple >> 6 & 63)]
                    out[o + 3] = table[Int(triple & 63)]
                    i += 3
                    o += 4
                }
                // One or two bytes left: padded.
                if i < input.count {
                    let second = i + 1 < input.count
                    let pair = UInt32(input[i]) << 16 | (second ? UInt32(input[i + 1]) << 8 : 0)
                    out[o] = table[Int(pair >> 18)]
                    out[o + 1] = table[Int(pair >> 12 & 63)]
                    out[o + 2] = second ? table[Int(pair >> 6 & 63)] : UInt8(ascii: "=")
                    out[o + 3] = UInt8(ascii: "=")
                    o += 4
                }
                return o
            }
        }
    }
}
