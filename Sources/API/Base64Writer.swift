import NIOCore

extension ByteBuffer {
    /// Appends the standard base64 (RFC 4648, with padding) of `bytes`, encoded straight into
    /// the buffer: no intermediate `Data` or `String` for the bytes of a followed output.
    mutating func writeBase64<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        let count = (bytes.count + 2) / 3 * 4
        guard count > 0 else { return }
        writeWithUnsafeMutableBytes(minimumWritableBytes: count) { out in
            let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
            return alphabet.withUTF8Buffer { table in
                var o = 0
                var iterator = bytes.makeIterator()
                while let a = iterator.next() {
                    let b = iterator.next(), c = iterator.next()
                    let triple = UInt32(a) << 16 | UInt32(b ?? 0) << 8 | UInt32(c ?? 0)
                    out[o] = table[Int(triple >> 18 & 63)]
                    out[o + 1] = table[Int(triple >> 12 & 63)]
                    out[o + 2] = b == nil ? UInt8(ascii: "=") : table[Int(triple >> 6 & 63)]
                    out[o + 3] = c == nil ? UInt8(ascii: "=") : table[Int(triple & 63)]
                    o += 4
                }
                return o
            }
        }
    }
}
