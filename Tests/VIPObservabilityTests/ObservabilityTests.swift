import Foundation
import Logging
import Metrics
import Testing
import VIPLabHarness
import VIPObservability
import VIPStore

/// One registry per process: swift-metrics can be bootstrapped only once.
let telemetry = Telemetry()

@Suite(.serialized) struct TelemetryTests {
    @Test func publishedFamiliesFollowStateAndParse() throws {
        telemetry.publish("metallb_speaker_announced", [
            ([("ip", "192.0.2.10"), ("node", "n1"), ("protocol", "layer2"), ("service", "default/web")], 1),
            ([("ip", "192.0.2.11"), ("node", "n1"), ("protocol", "layer2"), ("service", "default/db")], 1),
        ])
        var samples = try PrometheusText.parse(String(decoding: telemetry.render(), as: UTF8.self))
        #expect(PrometheusText.value(samples, "metallb_speaker_announced", ["ip": "192.0.2.11"]) == 1)
        // The second VIP moved away: its series goes, it does not linger at a stale value.
        telemetry.publish("metallb_speaker_announced", [
            ([("ip", "192.0.2.10"), ("node", "n1"), ("protocol", "layer2"), ("service", "default/web")], 1),
        ])
        samples = try PrometheusText.parse(String(decoding: telemetry.render(), as: UTF8.self))
        #expect(PrometheusText.value(samples, "metallb_speaker_announced", ["ip": "192.0.2.11"]) == nil)
        #expect(PrometheusText.value(samples, "metallb_speaker_announced", ["ip": "192.0.2.10"]) == 1)
    }

    @Test func runningTotalsBecomeMonotonicCounters() throws {
        telemetry.advance("metallb_layer2_requests_received", [([("ip", "192.0.2.20")], 5)])
        telemetry.advance("metallb_layer2_requests_received", [([("ip", "192.0.2.20")], 12)])
        telemetry.advance("metallb_layer2_requests_received", [([("ip", "192.0.2.20")], 12)])
        let samples = try PrometheusText.parse(String(decoding: telemetry.render(), as: UTF8.self))
        #expect(PrometheusText.value(samples, "metallb_layer2_requests_received", ["ip": "192.0.2.20"]) == 12)
    }

    @Test func swiftMetricsRecordingsAreExported() throws {
        Counter(label: "metalvip_lease_renew_failures_total", dimensions: [("component", "test")]).increment(by: 3)
        Timer(label: "metalvip_failover_duration_seconds", dimensions: [("node", "test")]).recordMilliseconds(180)
        Gauge(label: "metallb_allocator_ipv6_addresses_total", dimensions: [("pool", "big")]).record(18_446_744_073_709_551_616.0)
        let samples = try PrometheusText.parse(String(decoding: telemetry.render(), as: UTF8.self))
        #expect(PrometheusText.value(samples, "metalvip_lease_renew_failures_total", ["component": "test"]) == 3)
        #expect(PrometheusText.value(samples, "metalvip_failover_duration_seconds_count", ["node": "test"]) == 1)
        #expect(PrometheusText.value(samples, "metalvip_failover_duration_seconds_bucket", ["node": "test", "le": "0.2"]) == 1)
        #expect(PrometheusText.value(samples, "metalvip_failover_duration_seconds_bucket", ["node": "test", "le": "0.15"]) == 0)
        // A /64 is exported at its size, not saturated or negative.
        #expect(PrometheusText.value(samples, "metallb_allocator_ipv6_addresses_total", ["pool": "big"]) == 18_446_744_073_709_551_616.0)
    }

    @Test func theParserRejectsWhatPrometheusWould() {
        for bad in ["1bad 1", "name{l=unquoted} 1", "name{l=\"x\"}", "name 1 2 3", "name{l=\"x\\q\"} 1", "# TYPE name widget"] {
            #expect(throws: PrometheusParseError.self, "\(bad)") { try PrometheusText.parse(bad) }
        }
        #expect((try? PrometheusText.parse("a_b:c{x=\"1\",y=\"a\\\"b\"} +Inf"))?.first?.labels["y"] == "a\"b")
    }
}

@Suite struct StatusServerTests {
    final class Flags: @unchecked Sendable {
        var alive = true
        var reason: String? = "store file:/x unreachable: gone"
    }

    @Test func endpointsAnswerWithStatusAndReason() async throws {
        let flags = Flags()
        let server = try await StatusServer.start("127.0.0.1:0", handlers: StatusHandlers(
            metrics: { Array("up 1\n".utf8) },
            notReady: { flags.reason },
            alive: { flags.alive }))
        defer { Task { await server.stop() } }
        let port = try #require(Int(server.address.split(separator: ":").last ?? ""))
        let metrics = try await LANLab.fetch(port: port, path: "/metrics")
        #expect(metrics.status == 200 && metrics.body == "up 1\n")
        #expect(try await LANLab.fetch(port: port, path: "/healthz").status == 200)
        let notReady = try await LANLab.fetch(port: port, path: "/readyz")
        #expect(notReady.status == 503 && notReady.body == "store file:/x unreachable: gone\n")
        flags.reason = nil
        #expect(try await LANLab.fetch(port: port, path: "/readyz").status == 200)
        flags.alive = false
        #expect(try await LANLab.fetch(port: port, path: "/healthz").status == 503)
        #expect(try await LANLab.fetch(port: port, path: "/other").status == 404)
        await #expect(throws: StatusServerError.self) {
            _ = try await StatusServer.start("127.0.0.1:\(port)", handlers: StatusHandlers(metrics: { [] }, notReady: { nil }, alive: { true }))
        }
    }
}

@Suite struct LogLineTests {
    @Test func jsonAndLogfmtLinesCarryTheFields() throws {
        let fields = [("ts", "2026-11-22T03:00:00.000Z"), ("level", "info"), ("component", "speaker"),
                      ("msg", "took 192.0.2.10 \"now\""), ("ip", "192.0.2.10"), ("node", "n1")]
        let json = LineLogHandler.jsonLine(fields)
        let decoded = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String])
        #expect(decoded["msg"] == "took 192.0.2.10 \"now\"" && decoded["component"] == "speaker" && decoded["node"] == "n1")
        #expect(LineLogHandler.logfmtLine(fields)
                == "ts=2026-11-22T03:00:00.000Z level=info component=speaker msg=\"took 192.0.2.10 \\\"now\\\"\" ip=192.0.2.10 node=n1")
    }
}

@Suite struct InstrumentedStoreTests {
    struct Failing: Store {
        var name: String { "file:/nowhere" }
        func get(_ key: String) async throws -> Record? { throw StoreError.unavailable("down") }
        func list(prefix: String) async throws -> Listing { throw StoreError.unavailable("down") }
        func commit(_ transaction: Transaction) async throws -> Revision { throw StoreError.conflict(key: "k", expected: .absent) }
        func watch(prefix: String, after: Revision) -> AsyncThrowingStream<WatchEvent, Error> { AsyncThrowingStream { $0.finish() } }
        func compact(through revision: Revision) async throws {}
    }

    @Test func errorsAndConflictsAreCountedApartByBackend() async throws {
        let store = InstrumentedStore(Failing())
        #expect(store.backend == "file")
        await #expect(throws: StoreError.self) { _ = try await store.get("a") }
        await #expect(throws: StoreError.self) { try await store.commit(Transaction(operations: [])) }
        let samples = try PrometheusText.parse(String(decoding: telemetry.render(), as: UTF8.self))
        #expect((PrometheusText.value(samples, "metalvip_store_errors_total", ["backend": "file", "operation": "get"]) ?? 0) >= 1)
        #expect((PrometheusText.value(samples, "metalvip_store_conflicts_total", ["backend": "file"]) ?? 0) >= 1)
    }
}

@Suite struct DashboardTests {
    /// Every metric the dashboard queries is one MetalVIP exports, so a renamed metric breaks this test,
    /// not an operator's graph.
    @Test func theDashboardQueriesOnlyExportedMetrics() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Config/grafana/metalvip-dashboard.json")
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: path)) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        #expect(panels.count >= 8)
        let exported: Set<String> = [
            "metallb_allocator_addresses_total", "metallb_allocator_addresses_in_use_total",
            "metallb_allocator_ipv4_addresses_total", "metallb_allocator_ipv4_addresses_in_use_total",
            "metallb_allocator_ipv6_addresses_total", "metallb_allocator_ipv6_addresses_in_use_total",
            "metallb_layer2_requests_received", "metallb_layer2_responses_sent", "metallb_layer2_gratuitous_sent",
            "metallb_speaker_announced", "metalvip_lease_renew_duration_seconds_bucket", "metalvip_lease_renew_failures_total",
            "metalvip_ownership_transitions_total", "metalvip_failover_duration_seconds_bucket", "metalvip_frames_dropped_total",
            "metalvip_store_operation_duration_seconds_bucket", "metalvip_store_errors_total",
        ]
        for panel in panels {
            for target in panel["targets"] as? [[String: Any]] ?? [] {
                let expression = try #require(target["expr"] as? String)
                let names = expression.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") })
                    .map(String.init).filter { $0.hasPrefix("metallb_") || $0.hasPrefix("metalvip_") }
                #expect(!names.isEmpty, "\(expression)")
                for name in names { #expect(exported.contains(name), "\(name) in \"\(panel["title"] ?? "")\"") }
            }
        }
    }
}
