import Foundation
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
import Wire
#endif

/// Follows an execution's output like `tail -f`: `GET /executions/{id}/output?follow=true`
/// (Server-Sent Events, base64 payloads), each stream's bytes written raw to this process's
/// stdout or stderr as they come. When the connection drops (a network failure, a server
/// restart) it reconnects with `Last-Event-ID` and goes on exactly where it was, giving up
/// after `patience` without any progress. Returns the finished execution (the `end` event).
///
/// The connection is read by URLSession on its own threads (Linux has no `bytes(for:)`), and
/// the bytes are written on its serial delegate queue: nothing blocks Swift's cooperative pool.
struct OutputFollowing: Sendable {
    let client: APIClient
    let executionID: Int64
    /// One stream only, or nil for both.
    let stream: String?
    /// Asked every 100 ms while following: true stops it (Ctrl-C, a deadline).
    let shouldStop: @Sendable () -> Bool
    /// How long reconnecting may go on without any progress before giving up.
    var patience: Duration = .seconds(60)

    /// How following ended.
    enum Outcome {
        /// The execution finished: its state (without output).
        case ended(WireExecution)
        /// `shouldStop` said so.
        case stopped
    }

    func run() async throws(ClientError) -> Outcome {
        var lastEventID: String?
        var pause = Duration.milliseconds(200)
        var lastProgress = ContinuousClock.now
        while true {
            let connection = Connection(stdoutFD: 1, stderrFD: 2)
            let result = await connection.run(request: request(lastEventID: lastEventID), shouldStop: shouldStop)
            if connection.progressed {
                lastProgress = .now
                pause = .milliseconds(200)
            }
            lastEventID = connection.lastEventID ?? lastEventID
            switch result {
            case .ended(let execution):
                return .ended(execution)
            case .stopped:
                return .stopped
            case .deleted(let detail):
                throw .problem(status: 404, detail: detail, field: nil, retryAfter: nil)
            case .refused(let status, let body):
                throw APIClient.problem(ClientResponse(status: status, headers: [:], body: body), method: "GET",
                                        url: client.base + path)
            case .dropped(let reason):
                if ContinuousClock.now - lastProgress > patience {
                    throw .unreachable(url: client.base, reason: "\(reason); no progress for \(patience.components.seconds)s")
                }
                if shouldStop() { return .stopped }
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(2))
            }
        }
    }

    private var path: String { "/executions/\(executionID)/output" }

    private func request(lastEventID: String?) -> URLRequest {
        var query = [("follow", "true"), ("encoding", "base64")]
        if let stream { query.append(("stream", stream)) }
        let text = client.base + path + "?" + query.map { "\($0.0)=\(APIClient.escape($0.1))" }.joined(separator: "&")
        // The server sends a keep-alive at least every 15 s: 60 s of silence is a dead connection.
        var request = URLRequest(url: URL(string: text)!, timeoutInterval: 60)
        request.setValue("text/event-stream, application/problem+json", forHTTPHeaderField: "Accept")
        if let lastEventID { request.setValue(lastEventID, forHTTPHeaderField: "Last-Event-ID") }
        if let token = client.token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        return request
    }
}

/// One connection of `OutputFollowing`: the URLSession delegate that parses the events and
/// writes the output.
private final class Connection: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    /// How the connection ended.
    enum Result {
        case ended(WireExecution)
        case deleted(String)
        /// An error answer (a problem document, usually): status and body.
        case refused(Int, Data)
        /// Cut without a final event.
        case dropped(String)
        case stopped
    }

    private let stdoutFD: Int32
    private let stderrFD: Int32
    // Touched on the delegate queue only (serial) until `done` is resumed, then read.
    private var status = 0
    private var errorBody = Data()
    private var pending = Data()
    private var eventName = ""
    private var eventID: String?
    private var eventData: [String] = []
    private var result: Result?
    private(set) var lastEventID: String?
    private(set) var progressed = false
    private let done = Mutex<CheckedContinuation<Void, Never>?>(nil)

    init(stdoutFD: Int32, stderrFD: Int32) {
        self.stdoutFD = stdoutFD
        self.stderrFD = stderrFD
    }

    func run(request: URLRequest, shouldStop: @escaping @Sendable () -> Bool) async -> Result {
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        let configuration = URLSessionConfiguration.ephemeral
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        configuration.timeoutIntervalForRequest = request.timeoutInterval
        let session = URLSession(configuration: configuration, delegate: self, delegateQueue: queue)
        let task = session.dataTask(with: request)
        let stopped = Atomic<Bool>(false)
        let watcher = Task {
            while !Task.isCancelled {
                if shouldStop() {
                    stopped.store(true, ordering: .relaxed)
                    task.cancel()
                    return
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        await withCheckedContinuation { continuation in
            done.withLock { $0 = continuation }
            task.resume()
        }
        watcher.cancel()
        session.finishTasksAndInvalidate()
        // Everything the delegate queue did happened before `done` was resumed.
        if stopped.load(ordering: .relaxed), result == nil { return .stopped }
        return result ?? .dropped("the connection closed without the end of the execution")
    }

    // MARK: URLSessionDataDelegate

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        status = (response as? HTTPURLResponse)?.statusCode ?? 0
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard status == 200 else {
            if errorBody.count < 1 << 16 { errorBody.append(data) }
            return
        }
        pending.append(data)
        // Complete lines only; a line still arriving waits for the rest.
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            var line = pending[pending.startIndex..<newline]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            pending = pending[(newline + 1)...]
            handle(line: String(decoding: line, as: UTF8.self))
        }
        if pending.isEmpty { pending = Data() }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        if result == nil {
            if status != 0, status != 200 {
                result = .refused(status, errorBody)
            } else if let error {
                result = .dropped(APIClient.reason(error, timeout: task.originalRequest?.timeoutInterval ?? 60))
            }
        }
        done.withLock { continuation in
            continuation?.resume()
            continuation = nil
        }
    }

    // MARK: Events

    private func handle(line: String) {
        if line.isEmpty {
            dispatch()
            return
        }
        if line.hasPrefix(":") { return }
        let field: Substring, value: Substring
        if let colon = line.firstIndex(of: ":") {
            field = line[..<colon]
            let rest = line[line.index(after: colon)...]
            value = rest.hasPrefix(" ") ? rest.dropFirst() : rest
        } else {
            (field, value) = (line[...], "")
        }
        switch field {
        case "event": eventName = String(value)
        case "id": eventID = String(value)
        case "data": eventData.append(String(value))
        default: break
        }
    }

    private func dispatch() {
        defer { (eventName, eventID, eventData) = ("", nil, []) }
        guard !eventData.isEmpty else { return }
        let data = Data(eventData.joined(separator: "\n").utf8)
        switch eventName {
        case "output":
            guard let event = try? JSONDecoder().decode(WireOutputEvent.self, from: data) else { return }
            let bytes = event.encoding == "base64" ? Data(base64Encoded: event.data) ?? Data() : Data(event.data.utf8)
            writeAll(bytes, to: event.stream == "stderr" ? stderrFD : stdoutFD)
        case "end":
            if let execution = try? JSONDecoder().decode(WireExecution.self, from: data) { result = .ended(execution) }
        case "deleted":
            let detail = (try? JSONDecoder().decode(WireProblem.self, from: data))?.detail
            result = .deleted(detail ?? "the execution was deleted while its output was followed")
        default:
            break  // `capped`: the end event says what was truncated
        }
        if let eventID { lastEventID = eventID }
        progressed = true
    }
}
