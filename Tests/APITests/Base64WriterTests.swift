@testable import API
import Foundation
import Hummingbird
import Testing

/// The base64 the followed output writes straight into its buffers.
@Suite("Base64 writer")
struct Base64WriterTests {
    @Test("Every length and byte value encodes as Foundation does (padding included)")
    func matchesFoundation() {
        var generator = SystemRandomNumberGenerator()
        for length in Array(0...70) + [1000, 65_535, 65_536] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var buffer = ByteBuffer()
            buffer.writeBase64(bytes[...])
            #expect(buffer.readString(length: buffer.readableBytes) == Data(bytes).base64EncodedString(), "length \(length)")
        }
        var all = ByteBuffer()
        all.writeBase64(Array(0...255).map(UInt8.init))
        #expect(Data(base64Encoded: all.readString(length: all.readableBytes) ?? "") == Data((0...255).map(UInt8.init)))
    }
}
