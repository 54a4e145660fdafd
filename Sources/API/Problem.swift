import Engine
import Foundation
import HTTPTypes
import Hummingbird
import Store
import Wire

/// An error answer of the API as an RFC 9457 problem document (`application/problem+json`):
/// `type`, `title`, `status`, `detail`, `instance`, and `field` naming the offending input
/// (a body key path such as `limits.memory`, a query or a path parameter), or null.
///
/// Every refusal of the API is one of these; `ProblemMiddleware` turns anything else thrown by
/// a route into one, so no input produces an unexplained 500.
public struct Problem: Error, CustomStringConvertible, Sendable {
    /// The problem kind, the last part of `type` (`not-found`, `validation-failed`, …).
    public var slug: String
    public var status: HTTPResponse.Status
    public var detail: String
    public var field: String?
    /// Extra headers (`Retry-After`, `Allow`).
    public var headers: HTTPFields = [:]
    /// The members of the document beyond RFC 9457's and `field`: `retry_after`, `quota`,
    /// `checks`, `weaker_isolation` (the rest of this value is ignored).
    public var extra = WireProblem()

    public init(_ slug: String, _ status: HTTPResponse.Status, _ detail: String, field: String? = nil) {
        self.slug = slug
        self.status = status
        self.detail = detail
        self.field = field
    }

    public var description: String { "\(status.code) \(detail)" }

    /// The base of every problem `type`.
    public static let typeBase = "https://confine.dev/problems/"

    // MARK: Kinds

    static func malformedJSON(_ detail: String) -> Problem { Problem("malformed-json", .badRequest, detail) }
    static func invalidParameter(_ name: String, _ detail: String) -> Problem {
        Problem("invalid-parameter", .badRequest, detail, field: name)
    }
    static func validation(_ field: String?, _ detail: String) -> Problem {
        Problem("validation-failed", .unprocessableContent, detail, field: field)
    }
    static func notFound(_ detail: String, field: String? = nil) -> Problem {
        Problem("not-found", .notFound, detail, field: field)
    }
    static func conflict(_ detail: String) -> Problem { Problem("conflict", .conflict, detail) }
    static func tooLarge(limit: Int) -> Problem {
        Problem("payload-too-large", .contentTooLarge, "the request body is larger than the server's limit of \(limit) bytes (max_body_size)")
    }
    static func unsupportedMediaType(_ type: String) -> Problem {
        Problem("unsupported-media-type", .unsupportedMediaType, "the body must be application/json, not \(type)")
    }
    static func unavailable(_ slug: String, _ detail: String, retryAfter: Int?) -> Problem {
        var problem = Problem(slug, .serviceUnavailable, detail)
        if let retryAfter {
            problem.headers[.retryAfter] = String(retryAfter)
            problem.extra.retry_after = retryAfter
        }
        return problem
    }
    static func methodNotAllowed(_ method: HTTPRequest.Method, path: String, allowed: [HTTPRequest.Method]) -> Problem {
        let names = allowed.map(\.rawValue)
        var problem = Problem("method-not-allowed", .methodNotAllowed,
                              "\(method.rawValue) is not allowed on \(path); allowed: \(names.joined(separator: ", "))")
        problem.headers[.allow] = names.joined(separator: ", ")
        return problem
    }

    // MARK: From the layers below

    /// A refusal of the engine or the store in HTTP terms.
    static func from(_ error: EngineError) -> Problem {
        switch error {
        case .jobNotFound, .executionNotFound: return .notFound(error.description)
        case .unknownRuntime: return .validation("script_type", error.description)
        case .scriptTooLarge: return .validation("script_content", error.description)
        case .invalidPolicy(let why): return .validation(nil, why)
        case .invalidFiles(let why): return .validation("files", why)
        case .shuttingDown: return .unavailable("shutting-down", error.description, retryAfter: 5)
        case .store(let store): return .from(store)
        }
    }

    static func from(_ error: StoreError) -> Problem {
        switch error {
        case .notFound: return .notFound(error.description)
        case .conflict: return .conflict(error.description)
        case .invalidTransition: return .conflict(error.description)
        case .queueFull: return .unavailable("queue-full", error.description, retryAfter: 5)
        case .quotaExceeded: return Quotas.exceeded("max_active", field: nil, error.description)
        case .invalid: return .validation(nil, error.description)
        case .unavailable: return .unavailable("store-unavailable", error.description, retryAfter: 5)
        case .diskFull: return .unavailable("disk-full", error.description, retryAfter: 30)
        }
    }

    // MARK: Rendering

    /// The problem document.
    func document(instance: String) -> WireProblem {
        var document = extra
        document.type = Self.typeBase + slug
        document.title = status.reasonPhrase
        document.status = status.code
        document.detail = detail
        document.instance = instance
        document.field = field
        return document
    }

    /// The problem document as JSON bytes.
    func encoded(instance: String) -> [UInt8] {
        // A WireProblem holds strings, integers and string collections: encoding cannot fail.
        (try? WireJSON.encode(document(instance: instance))) ?? []
    }

    func response(instance: String) -> Response {
        var fields = headers
        fields[.contentType] = "application/problem+json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: encoded(instance: instance))))
    }
}
