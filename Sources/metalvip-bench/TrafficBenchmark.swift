import Foundation
import VIPLabHarness

/// Traffic through a VIP next to the direct path and HAProxy, side by side in one run on the same namespace LAN:
/// iperf3 throughput, wrk requests/s and latency, and the TCP failover a client sees. Needs root, the release
/// binaries and nginx, iperf3, wrk and haproxy (Tools/bench installs them).
struct TrafficBenchmark: BenchmarkSection {
    let name = "traffic"
    /// Failover runs (METALVIP_BENCH_RUNS, default 10, as the l2 section).
    let runs = Int(ProcessInfo.processInfo.environment["METALVIP_BENCH_RUNS"] ?? "") ?? 10
    /// Each figure is measured this many times, the paths taking turns, and the median kept: the cores are shared
    /// (METALVIP_BENCH_TRAFFIC_ROUNDS, default 3).
    let rounds = max(1, Int(ProcessInfo.processInfo.environment["METALVIP_BENCH_TRAFFIC_ROUNDS"] ?? "") ?? 3)
    let seconds = 5
    /// The measured service: one backend, so direct and VIP reach the same server.
    let benchVIP = "192.0.2.110"
    /// The failover service: a backend on every node, health-checked.
    let failoverVIP = "192.0.2.111"
    let httpPort = 8080
    let iperfPort = 5201
    /// HAProxy's listeners on the owner's own address.
    let haproxyHTTPPort = 8081
    let haproxyIperfPort = 5202
    /// The reference DNAT's ports on the owner's own address.
    let referenceHTTPPort = 8082
    let referenceIperfPort = 5203
    /// Request loops started this far apart during a failover: one loop alone can only see a recovery once
    /// its 200 ms request timeout ends, so four staggered loops resolve it to about 50 ms.
    let loops = 4
    let loopStaggerMs = 50
    /// How long after the fault the client keeps trying before a run counts as not recovered.
    let failoverWindowMs = 2500

    func run() -> [Table] {
        waitForTables(orErrorTitled: "Traffic through a VIP") { try await measure() }
    }

    var config: String {
        """
        apiVersion: metallb.io/v1beta1
        kind: IPAddressPool
        metadata: {name: lan, namespace: metallb-system}
        spec: {addresses: [192.0.2.100-192.0.2.149]}
        ---
        apiVersion: metallb.io/v1beta1
        kind: L2Advertisement
        metadata: {name: lan, namespace: metallb-system}
        spec: {ipAddressPools: [lan]}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: bench, annotations: {metallb.io/loadBalancerIPs: \(benchVIP)}}
        spec: {type: LoadBalancer, ports: [{name: http, port: 80}, {name: iperf, port: \(iperfPort)}]}
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: failover
          annotations: {metallb.io/loadBalancerIPs: \(failoverVIP), metalvip.io/health-check: tcp,
                        metalvip.io/health-check-interval: 200ms, metalvip.io/health-check-timeout: 150ms}
        spec: {type: LoadBalancer, ports: [{name: http, port: 80}]}
        """
    }

    func slices(benchBackend: Int, nodes: Int) -> String {
        let everyNode = (1...nodes).map { "- {addresses: [\(TrafficTools.address(of: $0))], nodeName: n\($0)}" }
        return """
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: bench-1, labels: {kubernetes.io/service-name: bench}}
            addressType: IPv4
            ports: [{name: http, port: \(httpPort)}, {name: iperf, port: \(iperfPort)}]
            endpoints:
            - {addresses: [\(TrafficTools.address(of: benchBackend))], nodeName: n\(benchBackend)}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: failover-1, labels: {kubernetes.io/service-name: failover}}
            addressType: IPv4
            ports: [{name: http, port: \(httpPort)}]
            endpoints:
            \(everyNode.joined(separator: "\n"))
            """
    }

    /// One way from the client to the backend.
    struct Path {
        var label: String
        var address: String
        var httpPort: Int
        var iperfPort: Int
    }

    /// Every figure of one path, one entry per round.
    struct PathFigures {
        var oneStream: [Double] = []
        var fourStreams: [Double] = []
        var http: [TrafficTools.HTTPLoad] = []
        var failures: [String] = []
    }

    func measure() async throws -> [Table] {
        let lab = try await LANLab(nodes: 3, binaries: L2Benchmark.releaseDirectory)
        let tools = TrafficTools(lab: lab)
        for node in 1...lab.nodes {
            try tools.startNginx(node: node, port: httpPort)
            try tools.startIperfServer(node: node, port: iperfPort)
        }
        try await lab.configure(config)
        try lab.startSpeakers(["--log-level", "warning"])
        guard let owner = try await lab.waitForSettledOwner(benchVIP) else {
            throw LANLab.LabError("no single speaker answers ARP for \(benchVIP) within 15 s (logs in \(lab.workPath))")
        }
        // The backend is another node, so the VIP path and HAProxy both cross the owner to reach it.
        let backend = owner % lab.nodes + 1
        let backendAddress = TrafficTools.address(of: backend), ownerAddress = TrafficTools.address(of: owner)
        try await lab.cli("apply", "-f", "-", stdin: slices(benchBackend: backend, nodes: lab.nodes))
        try tools.startHAProxy(node: owner, relays: [
            .init(name: "http", listenPort: haproxyHTTPPort, backend: backendAddress, backendPort: httpPort),
            .init(name: "iperf", listenPort: haproxyIperfPort, backend: backendAddress, backendPort: iperfPort),
        ])
        try await lab.nft(node: owner, referenceDNAT(owner: ownerAddress, backend: backendAddress))
        let paths = [
            Path(label: "direct (client -> backend \(backendAddress))", address: backendAddress, httpPort: httpPort, iperfPort: iperfPort),
            Path(label: "MetalVIP (client -> VIP \(benchVIP), owner n\(owner))", address: benchVIP, httpPort: 80, iperfPort: iperfPort),
            Path(label: "reference: 2-rule nft DNAT on the owner (client -> \(ownerAddress))", address: ownerAddress,
                 httpPort: referenceHTTPPort, iperfPort: referenceIperfPort),
            Path(label: "HAProxy TCP on the owner (client -> \(ownerAddress))", address: ownerAddress,
                 httpPort: haproxyHTTPPort, iperfPort: haproxyIperfPort),
        ]
        for path in paths { try await tools.waitForAnswer(path.address, port: path.httpPort, from: "n\(backend)") }

        var figures = Array(repeating: PathFigures(), count: paths.count)
        func record<T>(_ index: Int, _ what: String, _ measure: () async throws -> T, into keep: (inout PathFigures, T) -> Void) async {
            do { keep(&figures[index], try await measure()) } catch { figures[index].failures.append("\(what): \(error)") }
            try? await Task.sleep(for: .milliseconds(300))
        }
        for _ in 0..<rounds {
            for (index, path) in paths.enumerated() {
                await record(index, "iperf3 -P 1", { try await tools.iperf(path.address, port: path.iperfPort, seconds: seconds, streams: 1) },
                             into: { $0.oneStream.append($1) })
                await record(index, "iperf3 -P 4", { try await tools.iperf(path.address, port: path.iperfPort, seconds: seconds, streams: 4) },
                             into: { $0.fourStreams.append($1) })
                await record(index, "wrk", { try await tools.wrk(path.address, port: path.httpPort, seconds: seconds) },
                             into: { $0.http.append($1) })
            }
        }
        let failover = try await failoverRuns(lab, tools: tools)
        return tables(paths: paths, figures: figures, failover: failover)
    }

    /// The smallest kernel path there is, written by hand in a table of the bench's own on the owner: DNAT of the
    /// owner's address and two ports to the backend, masquerade of those connections. What the VIP path costs
    /// beyond it is MetalVIP's own rules (the hand-written DNAT the issue quotes gave 97% of direct).
    func referenceDNAT(owner: String, backend: String) -> String {
        """
        table ip metalvip_bench_reference {
            chain prerouting {
                type nat hook prerouting priority dstnat; policy accept;
                ip daddr \(owner) tcp dport \(referenceHTTPPort) dnat to \(backend):\(httpPort)
                ip daddr \(owner) tcp dport \(referenceIperfPort) dnat to \(backend):\(iperfPort)
            }
            chain postrouting {
                type nat hook postrouting priority srcnat; policy accept;
                ct original ip daddr \(owner) ct status dnat masquerade
            }
        }
        """
    }

    /// How one failover run ended.
    enum FailoverOutcome {
        /// Fault to the end of the first successful request started after the link was cut; the requests that
        /// failed after that one (new connections sent to the dead node's backend before its checks failed).
        case recovered(milliseconds: Double, failedAfter: Int)
        case noRecovery
        case noOwnerBefore
    }

    /// `kill -9` of everything on the failover VIP's owner (speaker and backend) and its link cut, while the client
    /// opens new connections to the VIP; `runs` times, the node restored after each.
    func failoverRuns(_ lab: LANLab, tools: TrafficTools) async throws -> [FailoverOutcome] {
        var outcomes: [FailoverOutcome] = []
        for _ in 0..<runs {
            guard let owner = try await lab.waitForSettledOwner(failoverVIP) else {
                outcomes.append(.noOwnerBefore)
                continue
            }
            var names: [String] = []
            for index in 0..<loops {
                if index > 0 { try await Task.sleep(for: .milliseconds(loopStaggerMs)) }
                names.append(try lab.startRequestLoop(address: failoverVIP, count: 100_000, gapMs: 5, timeoutMs: 200))
            }
            try await Task.sleep(for: .milliseconds(500))
            let killedAt = try await lab.signalAll(node: owner, SIGKILL)
            try await lab.cutLink(node: owner)
            let cutAt = monotonicNanoseconds()
            try await Task.sleep(for: .milliseconds(failoverWindowMs))
            for name in names { if let loop = lab.process(name) { kill(loop.processIdentifier, SIGKILL) } }
            var records: [RequestRecord] = []
            for name in names { records += try await lab.finish(requests: name, within: .seconds(5)) }
            try await lab.setBridgePort(node: owner, up: true)
            try lab.startSpeaker(node: owner, ["--log-level", "warning"])
            try tools.startNginx(node: owner, port: httpPort)

            let after = records.filter { $0.atNs >= cutAt }.sorted { $0.atNs < $1.atNs }
            guard let first = after.first(where: { $0.status == 200 }) else {
                outcomes.append(.noRecovery)
                continue
            }
            let recovered = first.atNs + Int64(first.ms * 1_000_000)
            outcomes.append(.recovered(milliseconds: Double(recovered - killedAt) / 1_000_000,
                                       failedAfter: after.filter { $0.atNs > first.atNs && $0.status != 200 }.count))
        }
        return outcomes
    }

    func tables(paths: [Path], figures: [PathFigures], failover: [FailoverOutcome]) -> [Table] {
        let direct = figures[0], vip = figures[1], haproxy = figures[3]
        func gbits(_ values: [Double]) -> Double? { median(values).map { $0 / 1e9 } }
        func rps(_ figure: PathFigures) -> Double? { median(figure.http.map(\.requestsPerSecond)) }
        func p50(_ figure: PathFigures) -> Double? { median(figure.http.map(\.p50Ms)) }
        func p99(_ figure: PathFigures) -> Double? { median(figure.http.map(\.p99Ms)) }

        var traffic = Table(title: "Traffic: direct, MetalVIP's VIP path and HAProxy, one run on the namespace LAN (release build; median of \(rounds) rounds)",
                            columns: ["path", "iperf3 1 stream Gbit/s", "of direct", "iperf3 4 streams Gbit/s", "of direct",
                                      "HTTP req/s", "of direct", "p50 ms", "p99 ms"])
        for (path, figure) in zip(paths, figures) {
            traffic.add([path.label,
                         format(gbits(figure.oneStream), 2), percent(gbits(figure.oneStream), gbits(direct.oneStream)),
                         format(gbits(figure.fourStreams), 2), percent(gbits(figure.fourStreams), gbits(direct.fourStreams)),
                         format(rps(figure), 0), percent(rps(figure), rps(direct)),
                         format(p50(figure), 3), format(p99(figure), 3)])
        }
        traffic.notes = [
            "throughput: `iperf3 -c ADDRESS -p PORT -t \(seconds) -P 1|4 -J` from the client namespace to `iperf3 -s` on the backend node; receiver's bits/s",
            "HTTP: `wrk -t2 -c32 -d\(seconds)s --latency http://ADDRESS:PORT/` to nginx (`return 200` with the node's name) on the backend node; kept-alive connections",
            "the backend is a node other than the VIP's owner, so the VIP path (DNAT + masquerade in the owner's kernel) and HAProxy (`mode tcp` on the owner's own address, ports \(haproxyHTTPPort)/\(haproxyIperfPort)) both cross the owner; the VIP's service maps port \(iperfPort) to iperf3 and port 80 to nginx's \(httpPort) on that ONE backend",
            "reference row: a table of the bench's own on the owner with 2 DNAT rules and a masquerade (`nft -f`, ports \(referenceHTTPPort)/\(referenceIperfPort)), the smallest kernel path: what the VIP path costs beyond it is MetalVIP's own rules",
            "every path's figures come from the same run, the paths taking turns in each round; client, nodes, bridge and tools share this machine's \(ProcessInfo.processInfo.activeProcessorCount) cores",
            "rounds, each path: " + zip(paths, figures).map { path, figure in
                "\(path.label.components(separatedBy: " (").first ?? path.label): 1 stream \(figure.oneStream.map { format($0 / 1e9, 2) }.joined(separator: "/")), "
                    + "4 streams \(figure.fourStreams.map { format($0 / 1e9, 2) }.joined(separator: "/")), "
                    + "req/s \(figure.http.map { format($0.requestsPerSecond, 0) }.joined(separator: "/"))"
            }.joined(separator: "; "),
        ]
        for (path, figure) in zip(paths, figures) {
            let wrkErrors = figure.http.flatMap(\.errors)
            if !wrkErrors.isEmpty { traffic.notes.append("\(path.label): wrk reported \(wrkErrors.joined(separator: "; "))") }
            for failure in figure.failures { traffic.notes.append("\(path.label): FAILED \(failure)") }
        }

        var gaps: [Double] = [], failedAfter: [Double] = []
        var noRecovery = 0, noOwner = 0
        for outcome in failover {
            switch outcome {
            case .recovered(let milliseconds, let failed):
                gaps.append(milliseconds)
                failedAfter.append(Double(failed))
            case .noRecovery: noRecovery += 1
            case .noOwnerBefore: noOwner += 1
            }
        }
        var failoverTable = Table(title: "TCP failover through the VIP (kill -9 of the owner + link cut; ms)",
                                  columns: ["median", "min-max", "recovered runs", "not recovered in \(failoverWindowMs) ms", "no owner before",
                                            "failed requests after the first success, median"])
        failoverTable.add([format(median(gaps), 1),
                           gaps.isEmpty ? "n/a" : "\(format(gaps.min()!, 1))-\(format(gaps.max()!, 1))",
                           "\(gaps.count) of \(failover.count)", "\(noRecovery)", "\(noOwner)", format(median(failedAfter), 0)])
        failoverTable.notes = [
            "gap = from `kill -9` of every process on the owner (speaker and its nginx; the link is cut right after) to the end of the first successful GET that started after the cut",
            "client: \(loops) loops of `metalvip-lab requests --address \(failoverVIP) --gap-ms 5 --timeout-ms 200` (a new connection each), started \(loopStaggerMs) ms apart, so a recovery is seen within about \(loopStaggerMs) ms rather than one 200 ms timeout",
            "service `failover`: backends (nginx :\(httpPort)) on all 3 nodes, `metalvip.io/health-check: tcp` every 200ms, timeout 150ms (fall 2, rise 2), so the dead node's backend leaves the new owner's rules; requests sent to it before then fail, counted in the last column",
            "runs: \(gaps.map { format($0, 1) }.joined(separator: ", "))",
        ]

        var goals = Table(title: "Traffic goals (issue 9)", columns: ["goal", "MetalVIP", "HAProxy", "met"])
        func row(_ goal: String, _ value: Double?, _ other: String, _ met: (Double) -> Bool, _ text: (Double) -> String) {
            goals.add([goal, value.map(text) ?? "n/a", other, value.map { met($0) ? "yes" : "NO" } ?? "n/a"])
        }
        func share(_ value: Double?, _ base: Double?) -> Double? {
            guard let value, let base, base > 0 else { return nil }
            return value / base
        }
        let oneShare = share(gbits(vip.oneStream), gbits(direct.oneStream))
        let fourShare = share(gbits(vip.fourStreams), gbits(direct.fourStreams))
        row("throughput, 1 stream >= 95% of direct", oneShare, percent(gbits(haproxy.oneStream), gbits(direct.oneStream)),
            { $0 >= 0.95 }, { format($0 * 100, 1) + "%" })
        row("throughput, 4 streams >= 95% of direct", fourShare, percent(gbits(haproxy.fourStreams), gbits(direct.fourStreams)),
            { $0 >= 0.95 }, { format($0 * 100, 1) + "%" })
        row("HTTP req/s >= 1.5x HAProxy's", share(rps(vip), rps(haproxy)), "1.00x", { $0 >= 1.5 }, { format($0, 2) + "x" })
        row("p50 latency <= 1.2x direct", share(p50(vip), p50(direct)), share(p50(haproxy), p50(direct)).map { format($0, 2) + "x" } ?? "n/a",
            { $0 <= 1.2 }, { format($0, 2) + "x" })
        row("TCP failover median < 300 ms", median(gaps), "n/a (no failover of its own)", { $0 < 300 }, { format($0, 1) + " ms" })
        return [traffic, goals, failoverTable]
    }

    func format(_ value: Double?, _ digits: Int) -> String { value.map { Table.format($0, digits: digits) } ?? "n/a" }

    func percent(_ value: Double?, _ base: Double?) -> String {
        guard let value, let base, base > 0 else { return "n/a" }
        return Table.format(value / base * 100, digits: 1) + "%"
    }
}
