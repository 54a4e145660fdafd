import Domain
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Store
import Wire

/// The answers whose size depends on what is stored, not on the request — `GET /jobs`,
/// `GET /jobs/by_script_type/{type}`, `GET /executions/job/{job_id}` — written as a plain JSON
/// array while it is read: a few jobs, or one execution's output a chunk at a time, are in
/// memory at once, whatever is stored (six parallel listings of 40 executions of 2 MiB once took
/// a server from 81 MB to 1.3 GB). `limit` and `cursor` page them: the answer stays a plain
/// array (the earlier platform's clients expect one); `X-Next-Cursor` and a `Link: rel="next"`
/// header give the next page when there is one.
struct StreamedAnswers {
    let server: APIServer

    /// Jobs read from the store at once (a script may be up to `max_script_size`).
    static let jobBatch = 16
    /// Executions (without output) read from the store at once.
    static let executionBatch = 32
    /// Bytes of one output stream read from the store at once.
    static let outputChunk = 256 << 10
    /// Output up to this size (both streams together) is answered in one piece with its row.
    static let inlineOutput = 64 << 10
    /// The largest `limit`.
    static let maximumLimit = 1000

    /// `limit` (1…1000; nil: everything) and `cursor` (the `X-Next-Cursor` of the previous page).
    struct Paging {
        var limit: Int?
        var cursor: Int64?
    }

    /// The paging parameters of a listing (others are ignored, as these routes always did).
    static func paging(_ parameters: Parameters) throws(Problem) -> Paging {
        var paging = Paging()
        if let text = parameters.get("limit") {
            guard let limit = Int(text), (1...maximumLimit).contains(limit) else {
                throw Problem.invalidParameter("limit", "limit must be an integer from 1 to \(maximumLimit), got \"\(text)\"")
            }
            paging.limit = limit
        }
        if let text = parameters.get("cursor") {
            guard let cursor = Int64(text), cursor >= 1 else {
                throw Problem.invalidParameter("cursor", "cursor must be the X-Next-Cursor of a previous page, got \"\(text)\"")
            }
            paging.cursor = cursor
        }
        return paging
    }

    // MARK: Jobs

    /// The jobs of a listing, oldest first, streamed.
    func jobs(scriptType: ScriptType?, tenant: String?, paging: Paging, path: String) async throws -> Response {
        let store = server.store
        // The page's ids first (small), so that the next cursor is known before the body starts;
        // without a limit, everything after the cursor.
        var last: Int64? = nil
        var next: Int64? = nil
        if let limit = paging.limit {
            let ids = try await server.storeCall {
                try await store.jobIDs(scriptType: scriptType, tenant: tenant, afterID: paging.cursor, limit: limit + 1)
            }
            last = ids.prefix(limit).last ?? 0
            if ids.count > limit { next = last }
        }
        let first = try await server.storeCall {
            try await store.jobs(scriptType: scriptType, tenant: tenant, afterID: paging.cursor, limit: Self.jobBatch)
        }
        let end = last
        return Response(status: .ok, headers: Self.headers(next: next, path: path, limit: paging.limit), body: ResponseBody { writer in
            var batch = first
            var wroteAny = false
            try await writer.write(ByteBuffer(string: "["))
            batchLoop: while !batch.isEmpty {
                var out: [UInt8] = []
                for job in batch {
                    if let end, job.id > end { batch = []; break }
                    if wroteAny { out.append(UInt8(ascii: ",")) }
                    out += try WireJSON.encode(Representations.job(job))
                    wroteAny = true
                }
                try await writer.write(ByteBuffer(bytes: out))
                guard let after = batch.last?.id, batch.count == Self.jobBatch, end.map({ after < $0 }) ?? true else { break batchLoop }
                batch = try await store.jobs(scriptType: scriptType, tenant: tenant, afterID: after, limit: Self.jobBatch)
            }
            try await writer.write(ByteBuffer(string: "]"))
            try await writer.finish(nil)
        })
    }

    // MARK: Executions of a job

    /// The executions of a job, oldest first, each with its output, streamed.
    func executions(jobID: Int64, encoding: Representations.OutputEncoding, paging: Paging, path: String) async throws -> Response {
        let store = server.store
        var query = ExecutionQuery(jobID: jobID, limit: paging.limit ?? Self.executionBatch, withOutput: false)
        // Ids above the cursor, oldest first.
        query.oldestFirst = true
        query.after = paging.cursor
        let firstQuery = query
        let first = try await server.storeCall { try await store.executions(firstQuery) }
        // With a limit, the first page is the whole answer.
        let next = paging.limit == nil ? nil : first.nextCursor
        let everything = paging.limit == nil
        return Response(status: .ok, headers: Self.headers(next: next, path: path, limit: paging.limit, encoding: encoding),
                        body: ResponseBody { writer in
            var page = first
            var query = firstQuery
            var wroteAny = false
            try await writer.write(ByteBuffer(string: "["))
            while true {
                for execution in page.executions {
                    if wroteAny { try await writer.write(ByteBuffer(string: ",")) }
                    try await Self.writeExecution(execution, encoding: encoding, store: store, to: &writer)
                    wroteAny = true
                }
                guard everything, let after = page.nextCursor else { break }
                query.after = after
                page = try await store.executions(query)
            }
            try await writer.write(ByteBuffer(string: "]"))
            try await writer.finish(nil)
        })
    }

    /// The members of an execution whose values are streamed or known only once the output is.
    static let streamedMembers: Set<String> = ["stdout", "stderr", "stdout_invalid_utf8", "stderr_invalid_utf8"]

    /// One execution as its wire type is written, its output streams read and written a chunk
    /// at a time in place of the `stdout` and `stderr` values (their `*_invalid_utf8` members,
    /// written after them, are known by then).
    static func writeExecution(_ execution: Execution, encoding: Representations.OutputEncoding, executionID: Bool = false,
                               store: any ExecutionStore, to writer: inout any ResponseBodyWriter) async throws {
        let wire = Representations.execution(execution, encoding: encoding, executionID: executionID)
        let (bytes, marks) = try WireJSON.encode(wire, marking: streamedMembers)
        var out: [UInt8] = []
        var invalid: [OutputStream: Bool] = [:]
        var written = 0
        for (name, range) in marks {
            out += bytes[written..<range.lowerBound]
            written = range.upperBound
            switch name {
            case "stdout", "stderr":
                let stream: OutputStream = name == "stdout" ? .stdout : .stderr
                out.append(UInt8(ascii: "\""))
                try await writer.write(ByteBuffer(bytes: out))
                out = []
                var encoder = OutputTextEncoder(encoding: encoding)
                var position: Int64 = 0
                while true {
                    let slice = try await store.output(executionID: execution.id, stdoutFrom: stream == .stdout ? position : .max,
                                                       stderrFrom: stream == .stderr ? position : .max, limit: outputChunk)
                    let bytes = (stream == .stdout ? slice?.stdout : slice?.stderr) ?? Data()
                    if bytes.isEmpty { break }
                    position += Int64(bytes.count)
                    var chunk: [UInt8] = []
                    encoder.encode(bytes, final: false, into: &chunk)
                    try await writer.write(ByteBuffer(bytes: chunk))
                }
                encoder.encode(Data(), final: true, into: &out)
                out.append(UInt8(ascii: "\""))
                invalid[stream] = encoder.invalidUTF8
            default:
                let flag = invalid[name == "stdout_invalid_utf8" ? .stdout : .stderr] ?? false
                out += Array((flag ? "true" : "false").utf8)
            }
        }
        out += bytes[written...]
        try await writer.write(ByteBuffer(bytes: out))
    }

    enum OutputStream { case stdout, stderr }

    /// One execution (read without its output) answered with its output streamed from the
    /// store a chunk at a time: `GET /executions/{id}`, a cancel's and a waited run's answer.
    func execution(_ execution: Execution, encoding: Representations.OutputEncoding, executionID: Bool = false,
                   status: HTTPResponse.Status = .ok) -> Response {
        let store = server.store
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody { writer in
            try await Self.writeExecution(execution, encoding: encoding, executionID: executionID, store: store, to: &writer)
            try await writer.finish(nil)
        })
    }

    static func headers(next: Int64?, path: String, limit: Int?, encoding: Representations.OutputEncoding? = nil) -> HTTPFields {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let next, let limit {
            headers[HTTPField.Name("X-Next-Cursor")!] = String(next)
            let extra = encoding == .base64 ? "&encoding=base64" : ""
            headers[HTTPField.Name("Link")!] = "<\(path)?limit=\(limit)&cursor=\(next)\(extra)>; rel=\"next\""
        }
        return headers
    }
}

/// One output stream as the content of a JSON string, chunk by chunk: UTF-8 text (bytes that
/// are not UTF-8 replaced by U+FFFD, and `invalidUTF8` set) or base64. A UTF-8 sequence or a
/// base64 group cut by a chunk's end is carried to the next chunk, so the result is the same as
/// encoding the whole stream at once.
struct OutputTextEncoder {
    let encoding: Representations.OutputEncoding
    private(set) var invalidUTF8 = false
    private var textCarry: [UInt8] = []
    private var base64Carry: [UInt8] = []

    init(encoding: Representations.OutputEncoding) { self.encoding = encoding }

    mutating func encode(_ bytes: Data, final: Bool, into out: inout [UInt8]) {
        // UTF-8: checked (and, for text, written) up to the last complete sequence.
        var data = textCarry + bytes
        let cut = final ? data.count : Self.completeUTF8Prefix(data)
        textCarry = Array(data[cut...])
        data.removeSubrange(cut...)
        let whole = Data(data)
        let text = String(validatingUTF8Bytes: whole)
        if text == nil { invalidUTF8 = true }
        switch encoding {
        case .utf8:
            WireJSON.appendStringContent(text ?? String(decoding: whole, as: UTF8.self), to: &out)
        case .base64:
            var group = base64Carry + bytes
            let take = final ? group.count : group.count - group.count % 3
            base64Carry = Array(group[take...])
            group.removeSubrange(take...)
            out += Array(Data(group).base64EncodedString().utf8)
        }
    }

    /// The length of the longest prefix of `bytes` that does not end inside a UTF-8 sequence.
    static func completeUTF8Prefix(_ bytes: [UInt8]) -> Int {
        let count = bytes.count
        var k = 1
        while k <= min(3, count) {
            let b = bytes[count - k]
            if b & 0xC0 == 0x80 { k += 1; continue }  // a continuation byte: look further back
            if b >= 0xC0 {
                let needed = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2
                return needed > k ? count - k : count
            }
            return count  // ASCII
        }
        return count
    }
}
