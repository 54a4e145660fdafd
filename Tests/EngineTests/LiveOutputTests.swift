import Foundation
@testable import Engine
import Sandbox
import Synchronization
import Testing

/// The live output of a running execution: what readers get for a position, what the store
/// is handed, and the waiting.
@Suite("Live output")
struct LiveOutputTests {
    /// Counts calls (the backlog bell).
    final class Counter: Sendable {
        let value = Atomic<Int>(0)
        func add() { value.add(1, ordering: .relaxed) }
        var count: Int { value.load(ordering: .relaxed) }
    }

    static func live(flushBytes: Int = 1 << 20, rung: Counter = Counter()) -> LiveOutput {
        LiveOutput(executionID: 7, caps: OutputPosition(stdout: 100, stderr: 100), flushBytes: flushBytes,
                   onBacklog: { rung.add() })
    }

    static func chunk(_ stream: OutputStreamName, _ offset: Int, _ text: String) -> OutputChunk {
        OutputChunk(stream: stream, offset: UInt64(offset), bytes: Array(text.utf8))
    }

    static func describe(_ read: LiveOutput.Read) -> [String] {
        guard case .chunks(let chunks, _, _) = read else { return ["\(read)"] }
        return chunks.map { "\($0.stream.rawValue)@\($0.offset):\(String(decoding: $0.bytes, as: UTF8.self))" }
    }

    @Test("Readers get the bytes after their position in arrival order, within a limit, one stream or both")
    func reading() {
        let live = Self.live()
        live.add(Self.chunk(.stdout, 0, "ab"))
        live.add(Self.chunk(.stderr, 0, "E1"))
        live.add(Self.chunk(.stdout, 2, "cd"))
        let both: Set<OutputStreamName> = [.stdout, .stderr]
        let all = live.read(after: OutputPosition(), streams: both, hint: nil, limit: 100)
        #expect(Self.describe(all) == ["stdout@0:ab", "stderr@0:E1", "stdout@2:cd"])
        #expect(Self.describe(live.read(after: OutputPosition(stdout: 1, stderr: 2), streams: both, hint: nil, limit: 100))
                == ["stdout@1:b", "stdout@2:cd"])
        #expect(Self.describe(live.read(after: OutputPosition(), streams: both, hint: nil, limit: 3)) == ["stdout@0:ab", "stderr@0:E"])
        #expect(Self.describe(live.read(after: OutputPosition(), streams: [.stderr], hint: nil, limit: 100)) == ["stderr@0:E1"])
        // The hint of a read starts the next one where it left off.
        guard case .chunks(_, let hint, _) = live.read(after: OutputPosition(), streams: both, hint: nil, limit: 3) else {
            Issue.record("no chunks")
            return
        }
        #expect(Self.describe(live.read(after: OutputPosition(stdout: 2, stderr: 1), streams: both, hint: hint, limit: 100))
                == ["stderr@1:1", "stdout@2:cd"])
        guard case .upToDate = live.read(after: OutputPosition(stdout: 4, stderr: 2), streams: both, hint: nil, limit: 100) else {
            Issue.record("a reader with everything is up to date")
            return
        }
        #expect(live.captured == OutputPosition(stdout: 4, stderr: 2))
    }

    @Test("The store gets the unstored bytes in batches of whole pieces; stored ones are dropped and read from the store")
    func storing() throws {
        let rung = Counter()
        let live = Self.live(flushBytes: 5, rung: rung)
        live.add(Self.chunk(.stdout, 0, "abc"))
        #expect(rung.count == 0)
        live.add(Self.chunk(.stderr, 0, "XY"))
        live.add(Self.chunk(.stdout, 3, "def"))
        #expect(rung.count == 1, "rung once when passing flushBytes")
        #expect(live.unstoredBytes == 8 && live.holds(moreThan: 7) && !live.holds(moreThan: 8))

        let first = try #require(live.unstored(limit: 4))
        #expect(first.stdout == Data("abc".utf8) && first.stderr.isEmpty && first.from == OutputPosition(stdout: 0, stderr: 0))
        let batch = try #require(live.unstored(limit: 100))
        #expect(batch.stdout == Data("abcdef".utf8) && batch.stderr == Data("XY".utf8))
        live.stored(upTo: first.upTo)
        #expect(live.unstoredBytes == 5)
        let rest = try #require(live.unstored())
        #expect(rest.stdout == Data("def".utf8) && rest.stderr == Data("XY".utf8) && rest.from == OutputPosition(stdout: 3, stderr: 0))

        // A reader before what is held reads from the store; one at or after it, from here.
        guard case .inStore = live.read(after: OutputPosition(stdout: 1, stderr: 0), streams: [.stdout, .stderr], hint: nil, limit: 9)
        else {
            Issue.record("bytes dropped from memory are read from the store")
            return
        }
        #expect(Self.describe(live.read(after: OutputPosition(stdout: 3, stderr: 0), streams: [.stdout, .stderr], hint: nil, limit: 9))
                == ["stderr@0:XY", "stdout@3:def"])
        live.stored(upTo: rest.upTo)
        #expect(live.unstored() == nil && live.unstoredBytes == 0)
        guard case .upToDate = live.read(after: live.captured, streams: [.stdout, .stderr], hint: nil, limit: 9) else {
            Issue.record("up to date after everything was stored")
            return
        }
    }

    @Test("A waiting reader is woken by more output and by the end; the end sends readers to the store")
    func waiting() async throws {
        let live = Self.live()
        guard case .upToDate(let version) = live.read(after: OutputPosition(), streams: [.stdout], hint: nil, limit: 9) else {
            Issue.record("nothing yet")
            return
        }
        // Woken long before its timeout, by the chunk added once it waits (or before: then at once).
        async let woken: Void = live.wait(since: version, timeout: .seconds(600))
        try await Task.sleep(for: .milliseconds(50))
        live.add(Self.chunk(.stdout, 0, "x"))
        await woken
        guard case .upToDate(let next) = live.read(after: OutputPosition(stdout: 1), streams: [.stdout], hint: nil, limit: 9) else {
            Issue.record("read everything")
            return
        }
        #expect(next != version)
        async let ended: Void = live.wait(since: next, timeout: .seconds(600))
        live.end()
        await ended
        guard case .ended = live.read(after: OutputPosition(), streams: [.stdout], hint: nil, limit: 9) else {
            Issue.record("after the end, readers go to the store")
            return
        }
        // A cancelled waiter returns too.
        let quiet = Self.live()
        let waiter = Task { await quiet.wait(since: 0, timeout: .seconds(600)) }
        waiter.cancel()
        await waiter.value
    }
}
