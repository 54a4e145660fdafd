import CoreMetrics
import HTTPTypes
import Synchronization

/// The HTTP metrics of one server: `confine_http_requests_total{route,method,status}` and
/// `confine_http_request_duration_seconds{route,method}`. The route is the OpenAPI path
/// template (`/jobs/{id}`), never the concrete path, and `unmatched` for a request that matched
/// no route; methods outside the standard ones count as `other`: the number of series stays
/// bounded whatever clients send. Each series is made on its first request and kept, so later
/// requests find theirs with one dictionary lookup.
final class HTTPMetrics: Sendable {
    static let requestsName = "confine_http_requests_total"
    static let durationName = "confine_http_request_duration_seconds"
    /// The route label of a request that matched no route.
    static let unmatched = "unmatched"

    /// From a cached answer (well under a millisecond) to a run waited for (`wait=true`, up to
    /// a minute or more).
    static let buckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
        .seconds(120),
    ]

    private static let standardMethods: Set<HTTPRequest.Method> = [.get, .head, .post, .put, .patch, .delete, .options, .trace, .connect]

    private struct Series: Hashable {
        let route: String
        let method: HTTPRequest.Method
        let status: Int
    }
    private let factory: any MetricsFactory
    private let series = Mutex<[Series: (requests: Counter, duration: CoreMetrics.Timer)]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    /// Counts one answered request and its duration.
    func record(route: String, method: HTTPRequest.Method, status: Int, nanoseconds: Int64) {
        let method = Self.standardMethods.contains(method) ? method : HTTPRequest.Method("other")!
        let key = Series(route: route, method: method, status: status)
        let (requests, duration) = series.withLock { series in
            if let known = series[key] { return known }
            let made = (
                Counter(label: Self.requestsName,
                        dimensions: [("route", route), ("method", method.rawValue), ("status", String(status))],
                        factory: factory),
                CoreMetrics.Timer(label: Self.durationName, dimensions: [("route", route), ("method", method.rawValue)],
                                  factory: factory))
            series[key] = made
            return made
        }
        requests.increment()
        duration.recordNanoseconds(nanoseconds)
    }
}
