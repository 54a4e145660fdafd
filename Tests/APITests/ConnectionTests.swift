import Foundation
import Glibc
import Synchronization
import Testing

/// Clients that misbehave at the connection level: a body sent slowly (408 at
/// `request_timeout`, then closed), headers sent slowly (closed at `idle_timeout`), clients
/// that hang up mid-request, and thousands of idle connections. Through all of it the server
/// keeps answering the others.
@Suite("Slow, vanishing and many clients")
struct ConnectionTests {
    @Test("A body sent byte by byte gets 408 request-timeout and the connection closes before it is whole; others are answered")
    func slowBody() async throws {
        try await LiveServer.with({ $0.requestTimeout = .seconds(1) }) { s in
            let started = Atomic<Bool>(false)
            let port = s.port, token = s.adminToken
            let slow = Task {
                try await onThread { () throws -> (sent: Int, answer: String) in
                    let c = try RawConnection(port: port)
                    let length = 400
                    guard c.send("POST /jobs HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\nContent-Length: \(length)\r\n\r\n")
                    else { throw TestFailure("could not send the head") }
                    var sent = 0
                    while sent < length {
                        guard c.send(" ") else { break }
                        sent += 1
                        started.store(true, ordering: .sequentiallyConsistent)
                        if c.readable(timeoutMs: 100) { break }
                    }
                    return (sent, c.readToEnd())
                }
            }
            while !started.load(ordering: .sequentiallyConsistent) { try await Task.sleep(for: .milliseconds(10)) }
            for _ in 0..<5 { #expect(try await s.get("/health").status == 200) }
            let job = try await s.job("others-go-on", "bash", "echo still here")
            #expect(try await s.post("/executions/\(job)/run?wait=true").object["stdout"] as? String == "still here\n")
            let (sent, answer) = try await slow.value
            #expect(sent < 400, "the slow body was read to its end: the timeout did not apply")
            #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
            #expect(answer.contains("https://confine.dev/problems/request-timeout") && answer.contains("request_timeout"), "\(answer)")
        }
    }

    @Test("Headers sent byte by byte: the connection closes at idle_timeout, before they are whole")
    func slowHeaders() async throws {
        try await LiveServer.with({ $0.idleTimeout = .seconds(1) }) { s in
            let port = s.port
            let (sent, closed) = try await onThread { () throws -> (Int, Bool) in
                let c = try RawConnection(port: port)
                guard c.send("GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ") else { throw TestFailure("could not send") }
                var sent = 0
                while sent < 600 {
                    guard c.send("a") else { return (sent, true) }
                    sent += 1
                    if c.readable(timeoutMs: 100) { return (sent, c.readToEnd().isEmpty) }
                }
                return (sent, false)
            }
            #expect(closed && sent < 600, "sent \(sent) header bytes; closed without an answer: \(closed)")
            #expect(try await s.get("/health").status == 200)
        }
    }

    @Test("Clients that hang up mid-request: the server goes on answering, and runs they submitted still end")
    func hangUps() async throws {
        try await LiveServer.with { s in
            let job = try await s.job("hang-up", "bash", "sleep 0.2; echo done", extra: #", "concurrency": "allow""#)
            let port = s.port, token = s.adminToken
            let rounds = 10
            try await onThread { () throws -> Void in
                for _ in 0..<rounds {
                    // Half a head.
                    try RawConnection(port: port).sendAndHangUp("POST /jobs HTTP/1.1\r\nHost: t\r\nContent-Le")
                    // A head and part of its body.
                    try RawConnection(port: port).sendAndHangUp(
                        "POST /jobs HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\": ")
                    // A whole run request that waits for the end, and no one left to read the answer.
                    try RawConnection(port: port).sendAndHangUp(
                        "POST /executions/\(job)/run?wait=true HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\nContent-Length: 0\r\n\r\n")
                }
            }
            #expect(try await s.get("/health").status == 200)
            let other = try await s.job("after-hang-ups", "bash", "echo fine")
            #expect(try await s.post("/executions/\(other)/run?wait=true").object["stdout"] as? String == "fine\n")
            // Each whole run request was taken: its execution exists and ends.
            var executions: [[String: Any]] = []
            for _ in 0..<200 {
                executions = try await s.get("/executions/job/\(job)").array
                if executions.count == rounds { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(executions.count == rounds, "\(executions.count) executions of \(rounds) run requests")
            for e in executions {
                let final = try await s.waitFinal(e["id"] as? Int ?? 0)
                #expect(final["stdout"] as? String == "done\n", "\(final)")
            }
        }
    }

    @Test("Two thousand idle connections: the server keeps them and still answers")
    func manyConnections() async throws {
        let count = 2000
        guard raiseOpenFileLimit(atLeast: 2 * count + 500) else {
            print("skipped: the open-file limit cannot reach \(2 * count + 500) here (client and server share this process)")
            return
        }
        try await LiveServer.with { s in
            let port = s.port
            let idle = try await onThread { try (0..<count).map { _ in try RawConnection(port: port) } }
            #expect(try await s.get("/health").status == 200)
            let job = try await s.job("among-many", "bash", "echo answered")
            #expect(try await s.post("/executions/\(job)/run?wait=true").object["stdout"] as? String == "answered\n")
            // Still open: the server neither refused nor dropped them.
            let dropped = try await onThread { idle.filter { $0.readable(timeoutMs: 0) }.count }
            #expect(dropped == 0, "\(dropped) of \(count) idle connections were closed")
            withExtendedLifetime(idle) {}
        }
    }
}

extension LiveServer {
    var port: Int { Int(baseURL.split(separator: ":").last ?? "") ?? 0 }
}

/// Runs blocking work on a thread of its own, never on Swift's cooperative pool.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}

/// Raises this process's soft limit on open files to at least `needed` (within the hard limit).
func raiseOpenFileLimit(atLeast needed: Int) -> Bool {
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    var limit = rlimit()
    guard getrlimit(resource, &limit) == 0 else { return false }
    if limit.rlim_cur >= rlim_t(needed) { return true }
    guard limit.rlim_max >= rlim_t(needed) else { return false }
    limit.rlim_cur = limit.rlim_max
    return setrlimit(resource, &limit) == 0
}

/// A plain blocking TCP connection to the server on loopback, for bytes no HTTP client sends.
final class RawConnection: @unchecked Sendable {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw TestFailure("connect: \(reason)")
        }
    }

    deinit { close(fd) }

    /// False once the server has closed the connection.
    func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    func sendAndHangUp(_ text: String) throws {
        guard send(text) else { throw TestFailure("the server closed the connection before it was sent") }
    }

    /// Whether the server sent something or closed, within the time given.
    func readable(timeoutMs: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, timeoutMs) > 0
    }

    /// Everything until the server closes (or 10 s of silence).
    func readToEnd() -> String {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while readable(timeoutMs: 10_000) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data += buffer[0..<n]
        }
        return String(decoding: data, as: UTF8.self)
    }
}
