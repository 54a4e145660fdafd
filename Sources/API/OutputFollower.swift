import Domain
import Engine
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Sandbox
import ServiceLifecycle
import Store
import Synchronization
import Wire

/// `GET /executions/{id}/output?follow=true`: an execution's stdout and stderr as Server-Sent
/// Events while they are produced, then its end.
///
/// Events (each `data:` one JSON object; see `openapi.yaml`, `FollowEvents`):
/// - `output` `{stream, offset, encoding, data}`: bytes of one stream from `offset`; `data` is
///   UTF-8 text (`encoding: "utf-8"`), or base64 when the bytes are not valid UTF-8 or the
///   client asked `encoding=base64`. A chunk never ends inside a UTF-8 character it could
///   complete: the character's first bytes wait for the rest.
/// - `capped` `{stream, limit_bytes, detail}`: the stream reached its capture cap (while it
///   runs) or was truncated (finished): the program's later bytes on it are counted in the end
///   event's `*_bytes` but neither stored nor streamed.
/// - `end`: the finished execution (as listed, without output); the response ends after it.
/// - `deleted` `{execution_id, detail}`: the execution was deleted while followed; the end.
///
/// Every event's `id` is `S:E`: how many bytes of stdout and of stderr the client has after
/// it. Sent back as `Last-Event-ID` (or `offset`), it resumes exactly there: no byte twice,
/// none lost. A PENDING execution is waited for; a RUNNING one streams; a finished one is
/// replayed from the store, then ends. A `: keep-alive` comment goes out when nothing else did
/// for `followHeartbeat`; on server shutdown the response ends without a final event (the
/// client reconnects with `Last-Event-ID`).
///
/// Memory: the follower holds only its position and the batch it is writing (`readLimit`
/// bytes at most). It reads the captured output the store does not have yet from the
/// engine's `LiveOutput`, the rest from the store; the sandbox never waits for it. Writes wait
/// for the client (the connection's backpressure): a client that stops reading stops its
/// follower, and nothing piles up for it anywhere.
struct OutputFollower: Sendable {
    let server: APIServer
    let executionID: Int64
    /// The streams followed (both, or the one `stream` names).
    let streams: Set<OutputStreamName>
    let encoding: Representations.OutputEncoding
    /// Where the client starts (`offset`, `Last-Event-ID`).
    let start: OutputPosition

    /// The most output read for one batch of events.
    static let readLimit = 256 * 1024
    /// The most bytes in one `output` event.
    static let eventBytes = 64 * 1024
    /// How often a PENDING execution, or a RUNNING one this server does not run, is looked at.
    static let pendingPoll = Duration.milliseconds(200)
    static let runningPoll = Duration.milliseconds(100)
    /// The longest wait before the shutdown flag is looked at again.
    static let longestWait = Duration.seconds(1)

    // MARK: The request

    /// The follow request of `request`, validated: 400 naming `stream`, `offset`, `encoding` or
    /// `Last-Event-ID` when one is malformed.
    static func parse(_ request: Request, server: APIServer, executionID: Int64,
                      encoding: Representations.OutputEncoding) throws -> OutputFollower {
        let query = request.uri.queryParameters
        var streams: Set<OutputStreamName> = [.stdout, .stderr]
        if let text = query.get("stream") {
            guard let stream = OutputStreamName(rawValue: text) else {
                throw Problem.invalidParameter("stream", "stream must be stdout or stderr, got \"\(text)\"")
            }
            streams = [stream]
        }
        var start = OutputPosition()
        if let text = query.get("offset") {
            if let position = eventPosition(text) {
                start = position
            } else if let bytes = Int64(text), bytes >= 0, streams.count == 1, let stream = streams.first {
                start[stream] = bytes
            } else {
                throw Problem.invalidParameter("offset", """
                    offset must be S:E (stdout and stderr byte offsets, an event id) or, with stream=stdout|stderr, \
                    one byte offset; got "\(text)"
                    """)
            }
        }
        if let text = request.headers[HTTPField.Name("Last-Event-ID")!] {
            guard let position = eventPosition(text) else {
                throw Problem.invalidParameter("Last-Event-ID", "Last-Event-ID must be an event id S:E (byte offsets), got \"\(text)\"")
            }
            start = position
        }
        return OutputFollower(server: server, executionID: executionID, streams: streams, encoding: encoding, start: start)
    }

    /// `S:E` → the position; nil when it is not two non-negative integers.
    static func eventPosition(_ text: String) -> OutputPosition? {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let stdout = Int64(parts[0]), let stderr = Int64(parts[1]), stdout >= 0, stderr >= 0 else {
            return nil
        }
        return OutputPosition(stdout: stdout, stderr: stderr)
    }

    /// The event id of a position.
    static func eventID(_ position: OutputPosition) -> String { "\(position.stdout):\(position.stderr)" }

    /// The streaming response (after the execution was found: a missing one is a 404 problem,
    /// not an event stream).
    func response() -> Response {
        var headers: HTTPFields = [.contentType: ServerSentEvents.contentType, .cacheControl: "no-cache"]
        // Proxies such as nginx would otherwise hold the events back in their buffers.
        headers[HTTPField.Name("X-Accel-Buffering")!] = "no"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let stopping = StopFlag()
            try await withGracefulShutdownHandler {
                var session = Session(follower: self, stopping: stopping)
                try await session.run(&writer)
            } onGracefulShutdown: {
                stopping.stop()
            }
            try await writer.finish(nil)
        })
    }

    // MARK: Streaming

    /// Set when the server shuts down gracefully.
    final class StopFlag: Sendable {
        private let flag = Atomic<Bool>(false)
        func stop() { flag.store(true, ordering: .relaxed) }
        var stopped: Bool { flag.load(ordering: .relaxed) }
    }

    /// One client's follow: its position and what it has sent.
    private struct Session {
        let follower: OutputFollower
        let stopping: StopFlag
        var position: OutputPosition
        var buffer = ByteBuffer()
        var lastWrite = ContinuousClock.now
        /// Streams whose `capped` event went out.
        var capped: Set<OutputStreamName> = []
        /// The capture caps, once the live output told them.
        var caps: OutputPosition?

        init(follower: OutputFollower, stopping: StopFlag) {
            self.follower = follower
            self.stopping = stopping
            self.position = follower.start
        }

        var server: APIServer { follower.server }
        var heartbeat: Duration { server.configuration.followHeartbeat }

        mutating func run(_ writer: inout any ResponseBodyWriter) async throws {
            ServerSentEvents.write(retryMilliseconds: 1000, to: &buffer)
            try await send(&writer)
            var hint: Int64?
            while true {
                if stopping.stopped {
                    ServerSentEvents.write(comment: "the server is shutting down; reconnect with Last-Event-ID", to: &buffer)
                    try await send(&writer)
                    return
                }
                try Task.checkCancellation()

                // The captured output this server holds, while the execution runs here.
                if let live = server.engine.liveOutput(executionID: follower.executionID) {
                    caps = live.caps
                    switch live.read(after: position, streams: follower.streams, hint: hint, limit: OutputFollower.readLimit) {
                    case .chunks(let chunks, let next, let version):
                        let (complete, emitted) = try emit(chunks.map { ($0.stream, Int64($0.offset), $0.bytes[...]) }, mayGrow: true)
                        hint = complete ? next : nil
                        try emitCapped(reached: live.caps)
                        try await send(&writer)
                        // Only the first bytes of a character are there: wait for the rest.
                        if emitted == 0 { await live.wait(since: version, timeout: min(OutputFollower.longestWait, heartbeatDue)) }
                        try await heartbeatIfDue(&writer)
                        continue
                    case .upToDate(let version):
                        try emitCapped(reached: live.caps)
                        try await send(&writer)
                        await live.wait(since: version, timeout: min(OutputFollower.longestWait, heartbeatDue))
                        try await heartbeatIfDue(&writer)
                        continue
                    case .inStore, .ended:
                        hint = nil
                    }
                }

                // The store: what was stored, and the execution's state.
                let slice = try await server.storeCall {
                    try await server.store.output(
                        executionID: follower.executionID,
                        stdoutFrom: follower.streams.contains(.stdout) ? position.stdout : Int64.max,
                        stderrFrom: follower.streams.contains(.stderr) ? position.stderr : Int64.max,
                        limit: OutputFollower.readLimit)
                }
                guard let slice else {
                    try ServerSentEvents.write(event: "deleted", id: OutputFollower.eventID(position), data: WireDeletedEvent(
                        execution_id: follower.executionID,
                        detail: "execution \(follower.executionID) was deleted while its output was followed"), to: &buffer)
                    try await send(&writer)
                    return
                }
                let execution = slice.execution
                if !slice.stdout.isEmpty || !slice.stderr.isEmpty {
                    let runs = [(OutputStreamName.stdout, position.stdout, Array(slice.stdout)[...]),
                                (OutputStreamName.stderr, position.stderr, Array(slice.stderr)[...])].filter { !$0.2.isEmpty }
                    let (_, emitted) = try emit(runs, mayGrow: !execution.status.isFinal)
                    if let caps { try emitCapped(reached: caps) }
                    try await send(&writer)
                    if emitted > 0 { continue }
                }
                if execution.status.isFinal {
                    for stream in [OutputStreamName.stdout, .stderr] where follower.streams.contains(stream) && !capped.contains(stream) {
                        let truncated = stream == .stdout ? execution.stdoutTruncated : execution.stderrTruncated
                        let kept = stream == .stdout ? slice.storedStdout : slice.storedStderr
                        if truncated { try emitCapped(stream, limit: kept) }
                    }
                    try ServerSentEvents.write(event: "end", id: OutputFollower.eventID(position),
                                           data: Representations.execution(execution, withOutput: false), to: &buffer)
                    try await send(&writer)
                    return
                }
                // Caught up with the store and not finished: pending, or running without (or
                // just past) its live output here. Look again in a moment.
                let poll = execution.status == .pending ? OutputFollower.pendingPoll : OutputFollower.runningPoll
                try? await Task.sleep(for: min(poll, heartbeatDue))
                try await heartbeatIfDue(&writer)
            }
        }

        /// Time left until a keep-alive is due (at least a millisecond).
        var heartbeatDue: Duration {
            max(.milliseconds(1), heartbeat - (ContinuousClock.now - lastWrite))
        }

        mutating func heartbeatIfDue(_ writer: inout any ResponseBodyWriter) async throws {
            guard ContinuousClock.now - lastWrite >= heartbeat else { return }
            ServerSentEvents.write(comment: "keep-alive", to: &buffer)
            try await send(&writer)
        }

        /// Writes what is buffered; waits while the client does not read.
        mutating func send(_ writer: inout any ResponseBodyWriter) async throws {
            guard buffer.readableBytes > 0 else { return }
            let batch = buffer
            buffer = ByteBuffer()
            try await writer.write(batch)
            lastWrite = .now
        }

        /// `output` events for runs of consecutive bytes (stream, offset, bytes), in order.
        /// Returns whether all was sent, and how many bytes were. Bytes are held back when they
        /// end with the start of a UTF-8 character whose end is not there yet and `mayGrow`
        /// (the rest may come): the rest of that stream's runs are left for the next read.
        mutating func emit(_ runs: [(OutputStreamName, Int64, ArraySlice<UInt8>)], mayGrow: Bool) throws -> (complete: Bool, emitted: Int) {
            var emitted = 0
            var blocked: Set<OutputStreamName> = []
            // Consecutive runs of one stream are consecutive bytes: one event for them.
            var merged: [(OutputStreamName, Int64, [UInt8])] = []
            for (stream, offset, bytes) in runs {
                if let last = merged.last, last.0 == stream, last.1 + Int64(last.2.count) == offset {
                    merged[merged.count - 1].2.append(contentsOf: bytes)
                } else {
                    merged.append((stream, offset, Array(bytes)))
                }
            }
            for (stream, offset, bytes) in merged where !blocked.contains(stream) {
                // Never a gap, never a byte twice: a run must start where the client is.
                guard offset == position[stream] else {
                    blocked.insert(stream)
                    continue
                }
                var index = 0
                while index < bytes.count {
                    let end = min(bytes.count, index + OutputFollower.eventBytes)
                    var part = bytes[index..<end]
                    var text: String?
                    if follower.encoding == .utf8 {
                        text = String(validating: part, as: UTF8.self)
                        if text == nil {
                            let tail = Self.incompleteTail(part)
                            if tail > 0, tail < part.count, let prefix = String(validating: part.dropLast(tail), as: UTF8.self) {
                                text = prefix
                                part = part.dropLast(tail)
                            } else if tail > 0, tail == part.count, end == bytes.count, mayGrow {
                                blocked.insert(stream)
                                break
                            }
                        }
                    }
                    let offset = position[stream]
                    position[stream] += Int64(part.count)
                    if let text {
                        try ServerSentEvents.write(event: "output", id: OutputFollower.eventID(position),
                                                   data: WireOutputEvent(stream: stream.rawValue, offset: offset, encoding: "utf-8", data: text),
                                                   to: &buffer)
                    } else {
                        // The same object, written directly: base64 needs no escaping.
                        ServerSentEvents.write(event: "output", id: OutputFollower.eventID(position), to: &buffer) { out in
                            out.writeString(#"{"stream":"\#(stream.rawValue)","offset":\#(offset),"encoding":"base64","data":""#)
                            out.writeBase64(part)
                            out.writeString(#""}"#)
                        }
                    }
                    index += part.count
                    emitted += part.count
                    // A character cut at the end of what is there: its first bytes wait for the rest.
                    if index < end, end == bytes.count {
                        blocked.insert(stream)
                        break
                    }
                }
            }
            return (blocked.isEmpty, emitted)
        }

        /// How many bytes at the end of `bytes` begin a UTF-8 character they do not complete (0-3).
        static func incompleteTail(_ bytes: ArraySlice<UInt8>) -> Int {
            var count = 0
            var index = bytes.endIndex
            while index > bytes.startIndex, count < 4 {
                index -= 1
                count += 1
                let byte = bytes[index]
                if byte & 0xC0 == 0x80 { continue }  // a continuation byte: look further back
                let length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                return length > count ? count : 0
            }
            return 0
        }

        /// `capped` events for the followed streams that reached their cap.
        mutating func emitCapped(reached caps: OutputPosition) throws {
            for stream in [OutputStreamName.stdout, .stderr]
            where follower.streams.contains(stream) && !capped.contains(stream) && position[stream] >= caps[stream] {
                try emitCapped(stream, limit: caps[stream])
            }
        }

        mutating func emitCapped(_ stream: OutputStreamName, limit: Int64) throws {
            capped.insert(stream)
            try ServerSentEvents.write(event: "capped", id: OutputFollower.eventID(position), data: WireCappedEvent(
                stream: stream.rawValue, limit_bytes: limit, detail: """
                    \(stream.rawValue) reached its capture limit of \(limit) bytes: what the program writes to it \
                    beyond is counted (\(stream.rawValue)_bytes of the end event) but neither kept nor streamed
                    """), to: &buffer)
        }
    }
}
