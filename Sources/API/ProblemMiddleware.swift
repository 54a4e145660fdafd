import Engine
import HTTPTypes
import Hummingbird
import Logging
import NIOHTTP1
import Store

/// Turns everything a route throws into a problem+json answer: `Problem`s as they are, the
/// router's not-found into 404 (or 405 with `Allow` when the path exists with other methods),
/// engine and store refusals into their HTTP meaning, and anything unexpected into a logged
/// 500 that still says what happened — never a bare error page or a dropped connection.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = ConfineRequestContext
    let table: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let instance = request.uri.path
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            return problem.response(instance: instance)
        } catch let error as EngineError {
            return Problem.from(error).response(instance: instance)
        } catch let error as StoreError {
            return Problem.from(error).response(instance: instance)
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = table.methods(matching: instance)
            if !allowed.isEmpty, !allowed.contains(request.method) {
                return Problem.methodNotAllowed(request.method, path: instance, allowed: allowed).response(instance: instance)
            }
            return Problem.notFound("no route \(request.method.rawValue) \(instance); see /openapi.json or /docs")
                .response(instance: instance)
        } catch let error as HTTPParserError {
            // The client hung up (or sent garbage) in the middle of its body: its business, not
            // the server's; whoever is still reading gets a 400.
            context.logger.debug("incomplete request \(request.method.rawValue) \(instance): \(error)")
            return Problem("incomplete-request", .badRequest, "the request ended before its body was whole (\(error))")
                .response(instance: instance)
        } catch let error as any HTTPResponseError {
            let status = error.status
            return Problem(status.code >= 500 ? "internal" : "bad-request", status, "\(error)").response(instance: instance)
        } catch {
            context.logger.error("unexpected error on \(request.method.rawValue) \(instance): \(error)")
            return Problem("internal", .internalServerError, "the server failed to answer: \(error)").response(instance: instance)
        }
    }
}
