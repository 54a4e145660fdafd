import Foundation

// The JSON of the REST API as the client verbs read and send it (see the API contract).
// Member names are the wire keys; dates stay strings (RFC 3339, shown as received or shortened).
// Confine's extras on executions are optional so that the client still reads a server that
// lacks some of them.

/// A problem document (RFC 9457), the body of every error answer.
struct WireProblem: Decodable {
    var type: String?
    var title: String?
    var status: Int?
    var detail: String?
    var instance: String?
    var field: String?
    var retry_after: Int?
}

/// A string, or a number or boolean rendered as a string (limit values may be either).
struct WireScalar: Decodable, CustomStringConvertible {
    var description: String

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            description = text
        } else if let integer = try? container.decode(Int64.self) {
            description = String(integer)
        } else if let number = try? container.decode(Double.self) {
            description = String(number)
        } else if let flag = try? container.decode(Bool.self) {
            description = String(flag)
        } else if container.decodeNil() {
            description = "null"
        } else {
            throw DecodingError.typeMismatch(String.self, .init(codingPath: decoder.codingPath, debugDescription: "expected a string or a number"))
        }
    }
}

/// A job as the server shows it.
struct WireJob: Decodable {
    var id: Int64
    var name: String
    var script_type: String
    var script_content: String
    var policy: String
    var limits: [String: WireScalar]
    var concurrency: String
    var arguments: [String]
    var environment: [String: String]
    var created_at: String
    var updated_at: String
}

/// The body of `POST /jobs` and `PATCH /jobs/{id}`: members left nil are not sent.
struct WireJobBody: Encodable {
    var name: String?
    var script_type: String?
    var script_content: String?
    var policy: String?
    var limits: [String: String]?
    var concurrency: String?
    var arguments: [String]?
    var environment: [String: String]?
    var secret_environment: [String: String]?

    var isEmpty: Bool {
        name == nil && script_type == nil && script_content == nil && policy == nil && limits == nil
            && concurrency == nil && arguments == nil && environment == nil && secret_environment == nil
    }
}

/// The body of `POST /executions/{job_id}/run`.
struct WireRunRequest: Encodable {
    var stdin: String?
    var stdin_base64: String?
    var arguments: [String]?
    var environment: [String: String]?
    var limits: [String: String]?
    var wait: Bool?
    var wait_timeout: Double?
}

/// The answer of a run request without `wait`, and the id member of one with it.
struct WireRunAccepted: Decodable {
    var execution_id: Int64
    var status: String
}

/// Resource use of an execution.
struct WireUsage: Decodable {
    var wall_ms: Int64?
    var cpu_ms: Int64?
    var memory_peak_bytes: Int64?
}

/// An execution (or an execution summary, which lacks the output members).
struct WireExecution: Decodable {
    var id: Int64
    var job_id: Int64
    var status: String
    var stdout: String?
    var stderr: String?
    var exit_code: Int32?
    var created_at: String
    var finished_at: String?
    var started_at: String?
    var verdict: String?
    var signal: Int32?
    var signal_name: String?
    var reason: String?
    var script_type: String?
    var policy: String?
    var arguments: [String]?
    var priority: Int?
    var stdout_encoding: String?
    var stderr_encoding: String?
    var stdout_invalid_utf8: Bool?
    var stderr_invalid_utf8: Bool?
    var stdout_bytes: Int64?
    var stderr_bytes: Int64?
    var stdout_truncated: Bool?
    var stderr_truncated: Bool?
    var usage: WireUsage?
    var worker: String?
    var cancel_requested: Bool?
    var weaker_isolation: [String]?

    /// Whether the execution has ended (every status but PENDING and RUNNING).
    var isFinal: Bool { status != "PENDING" && status != "RUNNING" }
}

/// One page of `GET /executions`.
struct WireExecutionPage: Decodable {
    var executions: [WireExecution]
    var next_cursor: String?
}
