import Engine
import Foundation
import Hummingbird

/// The run options of a request body, read the same way wherever a run is asked for: a job's
/// run (`POST /executions/{job_id}/run`), an ad-hoc run (`POST /executions`) and each item of
/// a batch. `stdin` or `stdin_base64`, `arguments`, `environment`, `limits`, `priority`, and
/// `wait` with `wait_timeout` (a query parameter of the same name wins over the body's).
struct RunBody {
    var options = RunOptions()
    var wait = false
    /// Seconds a `wait` waits at most (`max_wait` by default, and at most).
    var waitTimeout: Double = 30

    init(_ reader: BodyReader, query: Parameters?, maxWait: Double, maxFilesBytes: Int) throws(Problem) {
        options.files = try reader.inputFiles(maxBytes: maxFilesBytes) ?? []
        options.outputs = try reader.outputPatterns() ?? []
        let stdin = try reader.string("stdin"), stdinBase64 = try reader.string("stdin_base64")
        if stdin != nil, stdinBase64 != nil {
            throw .validation(reader.field("stdin_base64"), "give stdin or stdin_base64, not both")
        }
        if let stdin { options.stdin = Data(stdin.utf8) }
        if let stdinBase64 {
            guard let data = Data(base64Encoded: stdinBase64) else {
                throw .validation(reader.field("stdin_base64"), "\(reader.field("stdin_base64")) is not valid base64")
            }
            options.stdin = data
        }
        options.arguments = try reader.strings("arguments")
        options.environment = try reader.stringMap("environment") ?? [:]
        options.limits = try reader.limits("limits") ?? []
        options.priority = try reader.integer("priority", in: -100...100) ?? 0
        if let callback = try CallbackReader.read(reader) { options.callback = callback }

        wait = try reader.bool("wait") ?? false
        if let text = query?.get("wait") {
            guard let value = Bool(text.lowercased()) ?? (text == "1" ? true : text == "0" ? false : nil) else {
                throw .invalidParameter("wait", "wait must be true or false, got \"\(text)\"")
            }
            wait = value
        }
        var timeout = try reader.number("wait_timeout") ?? 30
        let queryTimeout = query?.get("wait_timeout")
        if let text = queryTimeout {
            guard let value = Double(text) else {
                throw .invalidParameter("wait_timeout", "wait_timeout must be a number of seconds, got \"\(text)\"")
            }
            timeout = value
        }
        if !reader.has("wait_timeout"), queryTimeout == nil { timeout = min(timeout, maxWait) }
        guard timeout > 0, timeout <= maxWait else {
            throw .validation(reader.field("wait_timeout"),
                              "wait_timeout must be above 0 and at most \(maxWait) seconds (max_wait), got \(timeout)")
        }
        waitTimeout = timeout
    }
}
