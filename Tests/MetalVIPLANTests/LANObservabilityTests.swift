import Foundation
import Testing
import VIPLabHarness

/// The status endpoints of the real daemons on the namespace LAN: what Prometheus would scrape.
@Suite(.serialized) struct LANObservabilityTests {
    let vip = "192.0.2.100"

    func scrape(_ lab: LANLab, node: Int) async throws -> [PrometheusSample] {
        let response = try await lab.fetch(node: node, path: "/metrics")
        #expect(response.status == 200)
        return try PrometheusText.parse(response.body)
    }

    @Test func speakerAndControllerMetricsMoveWithTrafficAndFailover() async throws {
        let lab = try await LANLab()
        try await lab.configure(labConfig)
        try lab.startSpeakers()
        // The controller runs in the client's namespace: its own loopback, the same store.
        try lab.start("controller", namespace: "\(lab.prefix)c", [lab.metalvip, "controller", "--store", lab.store])
        let owner = try #require(try await lab.waitForSettledOwner(vip))

        var samples = try await scrape(lab, node: owner)
        #expect(PrometheusText.value(samples, "metallb_speaker_announced",
                                     ["ip": vip, "node": "n\(owner)", "protocol": "layer2", "service": "default/web"]) == 1)
        let before = PrometheusText.value(samples, "metallb_layer2_responses_sent", ["ip": vip]) ?? 0
        let report = try await lab.probe([vip], durationMs: 1000)
        let answered = try #require(report.targets[vip]).answeredRequests
        samples = try await scrape(lab, node: owner)
        let after = try #require(PrometheusText.value(samples, "metallb_layer2_responses_sent", ["ip": vip]))
        #expect(after - before >= Double(answered) * 0.9, "responses counted: \(after - before) for \(answered) answered")
        #expect((PrometheusText.value(samples, "metallb_layer2_requests_received", ["ip": vip]) ?? 0) >= after)
        #expect((PrometheusText.value(samples, "metallb_layer2_gratuitous_sent", ["ip": vip]) ?? 0) >= 1)
        #expect((PrometheusText.value(samples, "metalvip_lease_renew_duration_seconds_count", ["component": "speaker"]) ?? 0) > 0)

        let controller = try await lab.fetch(namespace: "\(lab.prefix)c", port: 7472, path: "/metrics")
        let pools = try PrometheusText.parse(controller.body)
        #expect(PrometheusText.value(pools, "metallb_allocator_ipv4_addresses_total", ["pool": "lan"]) == 50)
        #expect(PrometheusText.value(pools, "metallb_allocator_ipv4_addresses_in_use_total", ["pool": "lan"]) == 1)
        #expect(PrometheusText.value(pools, "metallb_allocator_ipv4_addresses_in_use_total", ["pool": "dark"]) == 1)

        // Crash the owner: the taker counts the transition and the failover it saw.
        try await lab.crash(node: owner)
        var taker: Int?
        for _ in 0..<50 where taker == nil || taker == owner {
            taker = try await lab.waitForOwner(vip, timeout: .seconds(2))
        }
        let newOwner = try #require(taker, "no single answer for \(vip) after n\(owner) crashed:\n\(lab.recentLogs())")
        #expect(newOwner != owner)
        samples = try await scrape(lab, node: newOwner)
        #expect((PrometheusText.value(samples, "metalvip_ownership_transitions_total",
                                      ["node": "n\(newOwner)", "direction": "acquired"]) ?? 0) >= 1)
        let failovers = try #require(PrometheusText.value(samples, "metalvip_failover_duration_seconds_count", ["node": "n\(newOwner)"]))
        #expect(failovers >= 1)
    }

    @Test func readinessFailsWhenTheStoreGoesAway() async throws {
        let lab = try await LANLab()
        try await lab.configure(labConfig)
        try lab.startSpeakers()
        try lab.start("controller", namespace: "\(lab.prefix)c", [lab.metalvip, "controller", "--store", lab.store])
        _ = try #require(try await lab.waitForOwner(vip))
        #expect(try await lab.fetch(node: 1, path: "/readyz").status == 200)
        #expect(try await lab.fetch(node: 1, path: "/healthz").status == 200)
        #expect(try await lab.fetch(namespace: "\(lab.prefix)c", port: 7472, path: "/readyz").status == 200)

        // One atomic rename: deleting the tree file by file races the speakers writing into it (EPERM seen on CI).
        try FileManager.default.moveItem(atPath: lab.store, toPath: lab.store + ".gone")
        defer { try? FileManager.default.removeItem(atPath: lab.store + ".gone") }
        var speaker = StatusResponse(status: 0, body: "")
        var controller = StatusResponse(status: 0, body: "")
        for _ in 0..<100 where speaker.status != 503 || controller.status != 503 {
            try await Task.sleep(for: .milliseconds(50))
            speaker = try await lab.fetch(node: 1, path: "/readyz")
            controller = try await lab.fetch(namespace: "\(lab.prefix)c", port: 7472, path: "/readyz")
        }
        #expect(speaker.status == 503 && speaker.body.contains("unreachable"), "\(speaker.body)")
        #expect(controller.status == 503 && controller.body.contains("unreachable"), "\(controller.body)")
        #expect(speaker.body.split(separator: "\n").count == 1, "one-line reason")
        // The process loop itself is still alive.
        #expect(try await lab.fetch(node: 1, path: "/healthz").status == 200)
    }
}
