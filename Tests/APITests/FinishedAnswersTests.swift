@testable import API
import NIOCore
import Testing

/// The bounds of the finished answers kept in memory (`FinishedAnswers`): a count, a total of
/// bytes, a size per answer, and everything dropped when the store's version changes.
@Suite("Finished answers kept in memory")
struct FinishedAnswersTests {
    static func body(_ size: Int) -> ByteBuffer { ByteBuffer(repeating: UInt8(ascii: "x"), count: size) }

    @Test("At most maximumCount answers: the oldest go first; another version drops them all")
    func countBound() {
        let kept = FinishedAnswers()
        _ = kept.answer(0, .utf8, version: "v1")  // the version the answers are kept at
        let total = FinishedAnswers.maximumCount + 10
        for id in 0..<Int64(total) { kept.keep(id, .utf8, version: "v1", tenant: "t", body: Self.body(8)) }
        #expect(kept.count == FinishedAnswers.maximumCount)
        #expect(kept.answer(0, .utf8, version: "v1") == nil && kept.answer(9, .utf8, version: "v1") == nil)
        #expect(kept.answer(10, .utf8, version: "v1")?.tenant == "t")
        #expect(kept.answer(Int64(total - 1), .utf8, version: "v1")?.body.readableBytes == 8)
        // Each encoding is an answer of its own.
        #expect(kept.answer(Int64(total - 1), .base64, version: "v1") == nil)
        // A deletion somewhere (the version moved): nothing kept is answered, and an answer
        // read under the old version is not kept.
        #expect(kept.answer(Int64(total - 1), .utf8, version: "v2") == nil)
        #expect(kept.count == 0)
        kept.keep(1, .utf8, version: "v1", tenant: nil, body: Self.body(8))
        #expect(kept.count == 0)
    }

    @Test("At most maximumBytes in all, and no single answer over a 64th of it")
    func byteBounds() {
        let kept = FinishedAnswers()
        _ = kept.answer(0, .utf8, version: "v1")  // the version the answers are kept at
        kept.keep(0, .utf8, version: "v1", tenant: nil, body: Self.body(FinishedAnswers.maximumBytes / 64 + 1))
        #expect(kept.count == 0, "an answer over a 64th of the bound is not kept")
        let size = FinishedAnswers.maximumBytes / 64
        for id in 1...100 { kept.keep(Int64(id), .utf8, version: "v1", tenant: nil, body: Self.body(size)) }
        #expect(kept.count == 64, "64 answers of a 64th fill the bound exactly")
        #expect(kept.answer(36, .utf8, version: "v1") == nil && kept.answer(37, .utf8, version: "v1") != nil)
    }
}
