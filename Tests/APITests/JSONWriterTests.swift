@testable import API
import Foundation
import Testing

/// The API's JSON writer: what it writes parses back to the same values.
@Suite("JSON writer")
struct JSONWriterTests {
    @Test("Strings with quotes, backslashes, control bytes, DEL and non-ASCII round-trip; nulls and key order kept")
    func roundTrip() throws {
        let tricky = "plain \"quoted\" back\\slash\nnew\rret\ttab \u{01}\u{1f}\u{7f} é 日本 🙂 end"
        let value = JSON.object([("text", .string(tricky)), ("none", .null), ("n", .number(-42)), ("x", .number(1.5)),
                                 ("list", .array([.bool(true), .string("")]))])
        let bytes = value.encoded()
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix(#"{"text":"plain \"quoted\" back\\slash\nnew\rret\ttab \u0001\u001f\u007f é"#), "\(text)")
        #expect(text.hasSuffix(#","none":null,"n":-42,"x":1.5,"list":[true,""]}"#), "\(text)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(parsed["text"] as? String == tricky)
        #expect(parsed["none"] is NSNull)
        #expect(try JSON.parse(bytes) == JSON.object([("list", .array([.bool(true), .string("")])), ("n", .number(-42)),
                                                       ("none", .null), ("text", .string(tricky)), ("x", .number(1.5))]))
    }
}
