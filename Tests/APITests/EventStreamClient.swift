import Foundation
import Glibc
import Synchronization
import Testing

/// One server-sent event as a client parses it.
struct ReceivedEvent: CustomStringConvertible {
    var event: String
    var id: String?
    var data: String
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] ?? [:] }
    var description: String { "\(event) id=\(id ?? "-") \(data.prefix(200))" }

    /// The bytes of an `output` event (its `data` decoded as its `encoding` says).
    var bytes: Data {
        let o = json
        let text = o["data"] as? String ?? ""
        return o["encoding"] as? String == "base64" ? Data(base64Encoded: text) ?? Data() : Data(text.utf8)
    }
}

/// A plain HTTP/1.1 client on a socket for event streams, whose reading the test controls: it
/// sends one GET, and reads (on its own thread, never on Swift's cooperative pool, which the
/// in-process server needs) only once `startReading()` is called, so a test can play a client
/// that stops reading. The chunked body is decoded; events are parsed as they come.
final class EventStreamClient: @unchecked Sendable {
    private let fd: Int32
    private struct State {
        var raw = Data()          // everything received, headers included
        var closed = false
        var reading = false
    }
    private let state = Mutex(State())
    let path: String
    let headers: [String: String]

    /// Connects to `baseURL` (http://127.0.0.1:port) and sends `GET path` with `token` (as a
    /// bearer token) and `headers`.
    init(baseURL: String, token: String, path: String, headers: [String: String] = [:]) throws {
        self.path = path
        var headers = headers
        headers["Authorization"] = "Bearer \(token)"
        self.headers = headers
        let url = URL(string: baseURL)!
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        let fd = self.fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(url.port!).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { Glibc.close(fd); throw TestFailure("connect: errno \(errno)") }
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        let sent = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        guard sent == request.utf8.count else { Glibc.close(fd); throw TestFailure("send: errno \(errno)") }
    }

    deinit {
        close()
        Glibc.close(fd)
    }

    /// Reads everything the server sends from now on, on a dedicated thread, until it closes.
    func startReading() {
        let start = state.withLock { s -> Bool in
            defer { s.reading = true }
            return !s.reading && !s.closed
        }
        guard start else { return }
        let fd = self.fd
        Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                state.withLock { $0.raw.append(contentsOf: buffer[0..<n]) }
            }
            state.withLock { $0.closed = true }
        }.start()
    }

    /// Drops the connection (a client that vanished); safe to call more than once.
    func close() {
        if !shut.exchange(true, ordering: .relaxed) { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private let shut = Atomic<Bool>(false)

    /// Whether the server ended the response (or the connection is gone).
    var ended: Bool { state.withLock { $0.closed } || responseComplete }

    /// The status code and headers (lowercased names), once received.
    var head: (status: Int, headers: [String: String])? {
        guard let parts = split() else { return nil }
        return (parts.status, parts.headers)
    }

    /// The decoded body received so far.
    var body: Data { split()?.body ?? Data() }

    /// The events received so far, and the comments.
    var events: [ReceivedEvent] { Self.parse(String(decoding: body, as: UTF8.self)).events }
    var comments: [String] { Self.parse(String(decoding: body, as: UTF8.self)).comments }

    /// Whether the chunked body's last chunk came.
    private var responseComplete: Bool { split()?.complete ?? false }

    /// Polls (without blocking the pool) until `done` holds for the events, or the response ends
    /// (then one last look), or `seconds` pass. Returns the events.
    @discardableResult
    func wait(seconds: Double = 60, until done: ([ReceivedEvent]) -> Bool) async throws -> [ReceivedEvent] {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let events = self.events
            if done(events) { return events }
            if ended { return self.events }
            if Date() > deadline { throw TestFailure("no such events within \(seconds) s; got \(events.count): \(events.suffix(3))") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits for the end of the response.
    @discardableResult
    func waitEnd(seconds: Double = 60) async throws -> [ReceivedEvent] {
        let deadline = Date().addingTimeInterval(seconds)
        while !ended {
            if Date() > deadline { throw TestFailure("the response did not end within \(seconds) s; events: \(events.suffix(3))") }
            try await Task.sleep(for: .milliseconds(20))
        }
        return events
    }

    /// Appends the exchange to the record the API conformance check reads.
    func record() {
        guard let head else { return }
        Recorder.shared.record(method: "GET", path: path, requestType: nil, requestBody: nil,
                               answer: HTTPAnswer(status: head.status, headers: head.headers, body: body))
    }

    // MARK: Parsing

    private func split() -> (status: Int, headers: [String: String], body: Data, complete: Bool)? {
        let raw = state.withLock { $0.raw }
        guard let end = raw.range(of: Data("\r\n\r\n".utf8)) else { return nil }
        let lines = String(decoding: raw[raw.startIndex..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var rest = raw[end.upperBound...]
        guard headers["transfer-encoding"]?.lowercased() == "chunked" else {
            if let length = headers["content-length"].flatMap(Int.init) {
                return (status, headers, Data(rest.prefix(length)), rest.count >= length)
            }
            return (status, headers, Data(rest), false)
        }
        var body = Data()
        while let lineEnd = rest.range(of: Data("\r\n".utf8)) {
            let sizeText = String(decoding: rest[rest.startIndex..<lineEnd.lowerBound], as: UTF8.self)
            guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16) else { break }
            let start = lineEnd.upperBound
            if size == 0 { return (status, headers, body, true) }
            guard rest.distance(from: start, to: rest.endIndex) >= size + 2 else {
                body.append(rest[start...])  // a chunk still arriving
                break
            }
            body.append(rest[start..<rest.index(start, offsetBy: size)])
            rest = rest[rest.index(start, offsetBy: size + 2)...]
        }
        return (status, headers, body, false)
    }

    static func parse(_ text: String) -> (events: [ReceivedEvent], comments: [String]) {
        var events: [ReceivedEvent] = []
        var comments: [String] = []
        var current: (event: String?, id: String?, data: [String]) = (nil, nil, [])
        // What follows the last newline is a line still arriving (or nothing): only complete
        // lines count, and only a blank line ends an event.
        var lines = text.components(separatedBy: "\n")
        lines.removeLast()
        for line in lines {
            if line.isEmpty {
                if current.event != nil || !current.data.isEmpty {
                    events.append(ReceivedEvent(event: current.event ?? "message", id: current.id, data: current.data.joined(separator: "\n")))
                }
                current = (nil, nil, [])
                continue
            }
            if line.hasPrefix(":") {
                comments.append(String(line.dropFirst()).trimmingCharacters(in: .whitespaces))
                continue
            }
            let parts = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            var value = parts.count > 1 ? String(parts[1]) : ""
            if value.hasPrefix(" ") { value.removeFirst() }
            switch name {
            case "event": current.event = value
            case "id": current.id = value
            case "data": current.data.append(value)
            default: break
            }
        }
        return (events, comments)
    }
}

/// The bytes of each stream in `output` events, concatenated, with a check that every event
/// continues its stream exactly where the previous one ended (starting at `from`).
func outputBytes(_ events: [ReceivedEvent], from: (stdout: Int, stderr: Int) = (0, 0),
                 sourceLocation: SourceLocation = #_sourceLocation) -> (stdout: Data, stderr: Data) {
    var out = (stdout: Data(), stderr: Data())
    for event in events where event.event == "output" {
        let o = event.json
        let offset = o["offset"] as? Int ?? -1
        if o["stream"] as? String == "stdout" {
            #expect(offset == from.stdout + out.stdout.count, "stdout event at \(offset)", sourceLocation: sourceLocation)
            out.stdout.append(event.bytes)
        } else {
            #expect(offset == from.stderr + out.stderr.count, "stderr event at \(offset)", sourceLocation: sourceLocation)
            out.stderr.append(event.bytes)
        }
        #expect(event.id == "\(from.stdout + out.stdout.count):\(from.stderr + out.stderr.count)", "\(event)",
                sourceLocation: sourceLocation)
    }
    return out
}

/// This process's resident memory, from /proc/self/status (VmRSS), in bytes.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kb * 1024
}
