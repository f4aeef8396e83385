import Dispatch
import Foundation
import VIPForwarding
import VIPLabHarness
import VIPLink
import VIPModel
import VIPNFTables

/// The data path's programming cost at 10k services x 3 endpoints, in a throwaway namespace (root):
/// the whole table from empty (a speaker's start), and one service's endpoints changed while 10k are programmed.
/// Planning, rendering and the kernel transaction are timed apart, so a slow step is visible.
struct DatapathBenchmark: BenchmarkSection {
    let name = "datapath"
    let services = 10_000
    let changes = 20

    func run() -> [Table] {
        waitForTables(orErrorTitled: "Data path programming") {
            let namespace = "mvbench\(getpid())"
            let result = await Task { try await Self.shell(["ip", "netns", "add", namespace]); return try measure(in: namespace) }.result
            _ = try? await LANLab.shell(["ip", "netns", "delete", namespace])  // pass or fail
            return try result.get()
        }
    }

    static func shell(_ arguments: [String]) async throws {
        let result = try await LANLab.shell(arguments)
        guard result.status == 0 else { throw LANLab.LabError("\(arguments.joined(separator: " ")): \(result.output)") }
    }

    /// Services `svc0...`, three endpoints each. Documentation ranges only: ten VIPs (198.51.100.0-9) shared by
    /// 1k services each, every service on its own port; endpoints in 192.0.2.0/24 on ports 8000-8999.
    func inputs(count: Int) -> (services: [Service], assignments: [ObjectKey: [IPAddress]], backends: [ObjectKey: [EndpointSlice]]) {
        var services: [Service] = []
        var assignments: [ObjectKey: [IPAddress]] = [:]
        var backends: [ObjectKey: [EndpointSlice]] = [:]
        for index in 0..<count {
            let service = Service(meta: ObjectMeta(name: "svc\(index)"), ports: [ServicePort(name: "http", port: 1000 + index % 1000)])
            services.append(service)
            assignments[service.key] = [IPAddress(family: .ipv4, value: 0xC633_6400 + UInt128(index / 1000))]
            let endpoints = (0..<3).map { slot in
                EndpointSlice.Endpoint(address: IPAddress(family: .ipv4, value: 0xC000_0200 + UInt128((index * 3 + slot) % 254 + 1)))
            }
            backends[service.key] = [EndpointSlice(meta: ObjectMeta(name: "svc\(index)-a"), addressType: .ipv4, serviceName: "svc\(index)",
                                                   endpoints: endpoints, ports: [EndpointSlice.Port(name: "http", port: 8000 + index % 1000)])]
        }
        return (services, assignments, backends)
    }

    func measure(in namespace: String) throws -> [Table] {
        let context = try NetworkNamespace.run(namespace) { try NFTablesContext() }
        var input = inputs(count: services)
        var clock = ContinuousClock.now
        func lap() -> Double {
            let now = ContinuousClock.now
            defer { clock = now }
            return milliseconds(now - clock)
        }
        var state = ForwardingPlanner.plan(services: input.services, assignments: input.assignments, backends: input.backends,
                                           node: "n1", unhealthy: [:])
        let planFull = lap()
        let replacement = state.replacement()
        let renderFull = lap()
        try context.run(replacement.script)
        let applyFull = lap()

        var table = Table(title: "Data path programming, \(services) services x 3 endpoints (libnftables, one transaction each)",
                          columns: ["operation", "plan ms", "render/diff ms", "kernel ms", "total ms", "script bytes"])
        table.add(["whole table from empty", format(planFull), format(renderFull), format(applyFull),
                   format(planFull + renderFull + applyFull), "\(replacement.script.utf8.count)"])

        var plans: [Double] = [], diffs: [Double] = [], applies: [Double] = [], sizes: [Int] = []
        for round in 0..<changes {
            let key = input.services[(round * 487) % services].key
            input.backends[key]![0].endpoints[round % 3].address = IPAddress(family: .ipv4, value: 0xCB00_7100 + UInt128(round + 1))
            _ = lap()
            let next = ForwardingPlanner.plan(services: input.services, assignments: input.assignments, backends: input.backends,
                                              node: "n1", unhealthy: [:])
            plans.append(lap())
            let update = next.update(from: state)
            diffs.append(lap())
            try context.run(update.script)
            applies.append(lap())
            sizes.append(update.script.utf8.count)
            precondition(update.changedServices == 1, "one service changed, the diff says \(update.changedServices)")
            state = next
        }
        let median = { (values: [Double]) in values.sorted()[values.count / 2] }
        table.add(["one service's endpoints changed (median of \(changes))", format(median(plans)), format(median(diffs)),
                   format(median(applies)), format(median(plans) + median(diffs) + median(applies)), "\(sizes.sorted()[sizes.count / 2])"])
        table.notes = [
            "plan: ForwardingPlanner.plan over all services; render/diff: replacement() or update(from:); kernel: nft_run_cmd_from_buffer",
            "goals (issue 9): whole table < 1000 ms; one change at 10k < 10 ms in the kernel",
        ]
        return [table]
    }

    func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }

    func format(_ value: Double) -> String { Table.format(value, digits: 2) }
}
