import HTTPTypes
import Hummingbird
import Wire

/// Every answer says which Confine answered it: `Confine-Version: 1.1.0`.
struct VersionHeaderMiddleware: RouterMiddleware {
    typealias Context = ConfineRequestContext

    static let name = HTTPField.Name("Confine-Version")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[Self.name] = ConfineVersion.current
        return response
    }
}
