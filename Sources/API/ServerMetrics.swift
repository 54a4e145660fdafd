import CoreMetrics
import Engine
import Prometheus

/// One server's metrics in the Prometheus text format: a registry of its own, the factory that
/// fills it (with the histogram buckets of Confine's metrics), the engine's metrics and the
/// HTTP ones. Give `engine` to the `Engine` and the whole to the `APIServer`, which serves the
/// registry at `GET /metrics`. Servers in one process (tests) each have their own values.
public struct ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// Makes metrics into `registry`; `confine serve` also bootstraps `MetricsSystem` with it.
    public let factory: PrometheusMetricsFactory
    /// The engine's metrics, made in `registry`: pass them to `Engine.init`.
    public let engine: EngineMetrics
    let http: HTTPMetrics

    /// The exposition format's content type.
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = EngineMetrics.histogramBuckets
        factory.durationHistogramBuckets[HTTPMetrics.durationName] = HTTPMetrics.buckets
        self.factory = factory
        engine = EngineMetrics(factory: factory)
        http = HTTPMetrics(factory: factory)
    }

    /// Every metric of the registry, in the text exposition format.
    func exposition() -> [UInt8] { registry.emitToBuffer() }
}
