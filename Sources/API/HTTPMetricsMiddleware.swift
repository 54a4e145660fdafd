import HTTPTypes
import Hummingbird

/// Counts every request and measures how long the server took to answer it, by the template
/// of the route it matched (`unmatched` for none), its method and the status answered. Added
/// before every other middleware, so that it sees the final status of every answer, problems
/// included; the duration ends when the answer is ready to be written.
struct HTTPMetricsMiddleware: RouterMiddleware {
    typealias Context = ConfineRequestContext
    let table: RouteTable
    let metrics: HTTPMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let began = ContinuousClock.now
        func record(_ status: HTTPResponse.Status) {
            let elapsed = (ContinuousClock.now - began).components
            let route = table.template(endpoint: context.endpointPath, method: request.method) ?? HTTPMetrics.unmatched
            metrics.record(route: route, method: request.method, status: status.code,
                           nanoseconds: elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
        }
        do {
            let response = try await next(request, context)
            record(response.status)
            return response
        } catch {
            record((error as? any HTTPResponseError)?.status ?? .internalServerError)
            throw error
        }
    }
}
