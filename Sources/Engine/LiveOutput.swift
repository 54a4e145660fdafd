import Foundation
import Sandbox
import Synchronization

/// A place in an execution's two output streams: how many bytes of each come before it.
public struct OutputPosition: Sendable, Hashable, CustomStringConvertible {
    public var stdout: Int64
    public var stderr: Int64

    public init(stdout: Int64 = 0, stderr: Int64 = 0) {
        self.stdout = stdout
        self.stderr = stderr
    }

    public subscript(stream: OutputStreamName) -> Int64 {
        get { stream == .stdout ? stdout : stderr }
        set { if stream == .stdout { stdout = newValue } else { stderr = newValue } }
    }

    public var description: String { "stdout \(stdout), stderr \(stderr)" }
}

/// The output of one running execution as the sandbox captures it, for the store and for
/// clients following it.
///
/// The sandbox's thread only appends (`add`): it takes a lock for an array append and never
/// waits for anyone. What is held here is the captured output the store does not have yet,
/// in arrival order (the engine stores it in batches and then drops it: `unstored`, `stored`),
/// so its size does not depend on readers at all. A reader holds nothing but its position:
/// it reads the bytes after it from here (`read`), or from the store when the bytes it needs
/// were stored and dropped (`.inStore`); a reader that stops reading costs nothing, and one
/// that falls behind catches up from the store. Readers wait for more with `wait`.
public final class LiveOutput: Sendable {
    public let executionID: Int64
    /// Each stream's capture cap: bytes written past it are counted, never captured.
    public let caps: OutputPosition

    /// One captured chunk not yet stored.
    struct Piece {
        let stream: OutputStreamName
        let offset: Int64
        let bytes: [UInt8]
        var end: Int64 { offset + Int64(bytes.count) }
    }

    private struct State {
        /// Captured and not yet stored, in arrival order; `pieces[i]` has sequence number
        /// `firstSequence + i`.
        var pieces: [Piece] = []
        var firstSequence: Int64 = 0
        /// Bytes captured so far, per stream.
        var captured = OutputPosition()
        /// Bytes in `pieces`.
        var unstoredBytes = 0
        /// Bumped on every change a reader may wait for (more output, the end).
        var version: Int64 = 0
        var ended = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }
    private let state = Mutex(State())
    /// Rung when the unstored bytes pass `flushBytes` (the engine stores them sooner).
    private let onBacklog: @Sendable () -> Void
    private let flushBytes: Int

    init(executionID: Int64, caps: OutputPosition, flushBytes: Int, onBacklog: @escaping @Sendable () -> Void) {
        self.executionID = executionID
        self.caps = caps
        self.flushBytes = flushBytes
        self.onBacklog = onBacklog
    }

    // MARK: The sandbox's side

    /// A chunk the sandbox captured (on its supervisor thread): appended, waiting readers woken.
    func add(_ chunk: OutputChunk) {
        guard !chunk.bytes.isEmpty else { return }
        let (waiters, backlog) = state.withLock { s -> ([CheckedContinuation<Void, Never>], Bool) in
            s.pieces.append(Piece(stream: chunk.stream, offset: Int64(chunk.offset), bytes: chunk.bytes))
            s.captured[chunk.stream] = Int64(chunk.offset) + Int64(chunk.bytes.count)
            let before = s.unstoredBytes
            s.unstoredBytes += chunk.bytes.count
            s.version += 1
            let woken = Array(s.waiters.values)
            s.waiters.removeAll()
            return (woken, before < flushBytes && s.unstoredBytes >= flushBytes)
        }
        waiters.forEach { $0.resume() }
        if backlog { onBacklog() }
    }

    // MARK: The engine's side

    /// What the store does not have yet (its first `limit` bytes or so: whole pieces, at least
    /// one): each stream's bytes from its stored end on, and the sequence number to hand to
    /// `stored(upTo:)` once they are stored; nil when there is none.
    func unstored(limit: Int = .max) -> (stdout: Data, stderr: Data, from: OutputPosition, upTo: Int64)? {
        state.withLock { s in
            guard !s.pieces.isEmpty else { return nil }
            var stdout = Data(), stderr = Data()
            var from = s.captured
            for piece in s.pieces.reversed() { from[piece.stream] = piece.offset }
            var count = 0, bytes = 0
            stdout.reserveCapacity(min(limit, s.unstoredBytes))
            for piece in s.pieces {
                if count > 0, bytes + piece.bytes.count > limit { break }
                if piece.stream == .stdout { stdout.append(contentsOf: piece.bytes) } else { stderr.append(contentsOf: piece.bytes) }
                count += 1
                bytes += piece.bytes.count
            }
            return (stdout, stderr, from, s.firstSequence + Int64(count))
        }
    }

    /// Whether more is held than `limit` (the engine then pauses the capture).
    func holds(moreThan limit: Int) -> Bool { state.withLock { $0.unstoredBytes > limit } }

    /// The pieces before sequence number `upTo` are in the store: they are dropped.
    func stored(upTo sequence: Int64) {
        state.withLock { s in
            let count = Int(min(Int64(s.pieces.count), max(0, sequence - s.firstSequence)))
            guard count > 0 else { return }
            s.unstoredBytes -= s.pieces[..<count].reduce(0) { $0 + $1.bytes.count }
            s.pieces.removeFirst(count)
            s.firstSequence += Int64(count)
        }
    }

    /// The run is over and all of its output is stored (`finish` committed): everything held
    /// is dropped, and readers are told to read the rest, and the end, from the store.
    func end() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.ended = true
            s.pieces.removeAll()
            s.firstSequence = 0
            s.unstoredBytes = 0
            s.version += 1
            let woken = Array(s.waiters.values)
            s.waiters.removeAll()
            return woken
        }
        waiters.forEach { $0.resume() }
    }

    /// Bytes captured and not yet stored (for the engine's batching, and tests).
    public var unstoredBytes: Int { state.withLock { $0.unstoredBytes } }

    /// Bytes captured so far, per stream.
    public var captured: OutputPosition { state.withLock { $0.captured } }

    // MARK: Readers

    /// What `read` found.
    public enum Read: Sendable {
        /// Captured bytes after the position, in arrival order (each chunk the consecutive bytes
        /// of one stream from its `offset`), the sequence hint for the next read, and the
        /// version to wait past when these are not enough (the first bytes of a character).
        case chunks([OutputChunk], hint: Int64, version: Int64)
        /// The bytes after the position (in some wanted stream) were stored and dropped from
        /// here: read them from the store.
        case inStore
        /// Nothing after the position yet: `wait(since: version, …)` for more.
        case upToDate(version: Int64)
        /// The run is over and everything is in the store: read the rest, and the end, there.
        case ended
    }

    /// The captured bytes after `position`, of the `streams` wanted, `limit` bytes at most.
    /// `hint` (from the previous `.chunks`) spares a search; nil is always correct.
    public func read(after position: OutputPosition, streams: Set<OutputStreamName>, hint: Int64?, limit: Int) -> Read {
        state.withLock { s in
            if s.ended { return .ended }
            // Where memory starts for each stream: its first piece held, or all captured.
            var held = s.captured
            var seen: Set<OutputStreamName> = []
            for piece in s.pieces where !seen.contains(piece.stream) {
                held[piece.stream] = piece.offset
                seen.insert(piece.stream)
                if seen.count == 2 { break }
            }
            for stream in streams where position[stream] < held[stream] { return .inStore }
            var start = 0
            if let hint { start = Int(min(Int64(s.pieces.count), max(0, hint - s.firstSequence))) }
            var chunks: [OutputChunk] = []
            var taken = 0
            var next = start
            var index = start
            var at = position
            while index < s.pieces.count, taken < limit {
                let piece = s.pieces[index]
                if streams.contains(piece.stream), piece.end > at[piece.stream] {
                    let from = max(at[piece.stream], piece.offset)
                    let lower = Int(from - piece.offset)
                    let upper = min(piece.bytes.count, lower + (limit - taken))
                    chunks.append(OutputChunk(stream: piece.stream, offset: UInt64(from), bytes: Array(piece.bytes[lower..<upper])))
                    taken += upper - lower
                    at[piece.stream] = from + Int64(upper - lower)
                    // A piece read only in part is where the next read starts.
                    if upper < piece.bytes.count { break }
                }
                index += 1
                next = index
            }
            if chunks.isEmpty { return .upToDate(version: s.version) }
            return .chunks(chunks, hint: s.firstSequence + Int64(next), version: s.version)
        }
    }

    /// Returns when something changed since `version` (more output, the end), when `timeout`
    /// passes, or when the task is cancelled; whichever comes first.
    public func wait(since version: Int64, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.changed(since: version) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func changed(since version: Int64) async {
        let key = state.withLock { s -> Int in
            s.nextWaiter += 1
            return s.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.version != version || s.ended || Task.isCancelled { return true }
                    s.waiters[key] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: key) }?.resume()
        }
    }
}
