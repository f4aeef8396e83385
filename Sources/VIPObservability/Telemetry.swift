import CoreMetrics
import Metrics
import Prometheus
import Synchronization

/// The process's metrics: swift-metrics recorded anywhere in the code, exported in Prometheus text by a
/// PrometheusCollectorRegistry. Families whose series come and go with state (pools, VIPs) are set at
/// scrape time through `publish`, so a removed pool stops being exported.
public final class Telemetry: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let published = Mutex<[String: [SeriesKey: Prometheus.Gauge]]>([:])
    private let totals = Mutex<[String: [SeriesKey: (counter: Prometheus.Counter, value: UInt64)]]>([:])

    struct SeriesKey: Hashable {
        var labels: [String]
        init(_ labels: [(String, String)]) { self.labels = labels.flatMap { [$0.0, $0.1] } }
    }

    /// Buckets sized for what each histogram measures.
    static let buckets: [String: [Duration]] = [
        "metalvip_lease_renew_duration_seconds": [.microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
                                                  .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                                                  .milliseconds(100), .milliseconds(250)],
        "metalvip_failover_duration_seconds": [.milliseconds(50), .milliseconds(100), .milliseconds(150), .milliseconds(200),
                                               .milliseconds(250), .milliseconds(300), .milliseconds(500), .seconds(1),
                                               .seconds(2), .seconds(5)],
        "metalvip_store_operation_duration_seconds": [.microseconds(100), .microseconds(250), .microseconds(500),
                                                      .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                                      .milliseconds(50), .milliseconds(100), .seconds(1)],
    ]

    /// Makes the registry the process's swift-metrics backend (once per process).
    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = Self.buckets
        MetricsSystem.bootstrap(factory)
    }

    /// Replaces a gauge family's series with `values`; series not listed any more are removed.
    public func publish(_ name: String, _ values: [([(String, String)], Double)]) {
        published.withLock { families in
            var current = families[name] ?? [:]
            var next: [SeriesKey: Prometheus.Gauge] = [:]
            for (labels, value) in values {
                let key = SeriesKey(labels)
                let gauge = current.removeValue(forKey: key) ?? registry.makeGauge(name: name, labels: labels)
                gauge.set(value)
                next[key] = gauge
            }
            for stale in current.values { registry.unregisterGauge(stale) }
            families[name] = next
        }
    }

    /// Exports running totals kept elsewhere (the packet path's counters) as Prometheus counters.
    public func advance(_ name: String, _ values: [([(String, String)], UInt64)]) {
        totals.withLock { families in
            var family = families[name] ?? [:]
            for (labels, value) in values {
                let key = SeriesKey(labels)
                var entry = family[key] ?? (registry.makeCounter(name: name, labels: labels), 0)
                if value > entry.value { entry.counter.increment(by: Int64(value - entry.value)) }
                entry.value = max(entry.value, value)
                family[key] = entry
            }
            families[name] = family
        }
    }

    /// The Prometheus text exposition.
    public func render() -> [UInt8] { registry.emitToBuffer() }
}
