import HTTPTypes
import Hummingbird

/// Answers to `HEAD` have the status and headers a `GET` would have (`Content-Length`
/// included when known) and no body: the body is dropped before it is written, so a streamed
/// one (a followed output) is never started, and problems answered to a HEAD carry none.
struct HeadMiddleware: RouterMiddleware {
    typealias Context = ConfineRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response = try await next(request, context)
        guard request.method == .head else { return response }
        var headers = response.headers
        if let length = response.body.contentLength, headers[.contentLength] == nil { headers[.contentLength] = String(length) }
        return Response(status: response.status, headers: headers, body: .init())
    }
}
