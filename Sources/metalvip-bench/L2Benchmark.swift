import Foundation
import VIPLabHarness

/// Failover, handover and ARP reply time on the namespace LAN, next to keepalived on the same LAN in the
/// same run. Needs root, the release binaries (Tools/bench builds them) and keepalived installed.
struct L2Benchmark: BenchmarkSection {
    let name = "l2"
    /// Runs per scenario (METALVIP_BENCH_RUNS, default 10).
    let runs = Int(ProcessInfo.processInfo.environment["METALVIP_BENCH_RUNS"] ?? "") ?? 10
    let vip = "192.0.2.100"
    /// web6 from `labIPv6Services`, applied after the IPv4 runs so those run on the config they always had.
    let vip6 = "2001:db8::100"
    /// Runs per IPv6 scenario: half, the IPv4 runs are the headline.
    var runs6: Int { max(1, runs / 2) }
    /// The release binaries: METALVIP_RELEASE_DIR, else the repository's own release build.
    static var releaseDirectory: URL {
        if let path = ProcessInfo.processInfo.environment["METALVIP_RELEASE_DIR"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return LANLab.repository.appendingPathComponent(".build/release")
    }
    /// keepalived's VIP: outside MetalVIP's pool, so the two never meet.
    let vrrpVIP = "192.0.2.150"

    func run() -> [Table] {
        waitForTables(orErrorTitled: "L2 failover") { try await measure() }
    }

    /// A client-side gap for one scenario: the time from the fault to the first answer from another MAC.
    /// How one run ended.
    enum Move {
        case moved(milliseconds: Double)
        /// Some request was answered by two MACs: a split brain the client saw.
        case doubleAnswered(Int)
        case noMove
        case noOwnerBefore
    }

    /// The runs of one system in one scenario, with why any were dropped.
    struct Runs {
        var gaps: [Double] = []
        var doubleAnswered = 0
        var other = 0

        mutating func add(_ move: Move) {
            switch move {
            case .moved(let milliseconds): gaps.append(milliseconds)
            case .doubleAnswered: doubleAnswered += 1
            case .noMove, .noOwnerBefore: other += 1
            }
        }

        var dropped: String { "\(doubleAnswered) answered twice, \(other) no clean move" }
    }

    /// - Parameter fault: does the damage and returns the monotonic time it happened.
    func measureMove(_ lab: LANLab, vip: String, windowMs: Int = 1800, fault: (Int) async throws -> Int64,
                     restore: (Int) async throws -> Void, owner: (LANLab) async throws -> Int?) async throws -> Move {
        guard let before = try await owner(lab) else { return .noOwnerBefore }
        let probe = try lab.startProbe([vip], durationMs: windowMs, intervalMs: 1)
        try await Task.sleep(for: .milliseconds(500))
        let at = try await fault(before)
        let report = try await lab.finish(probe)
        try await restore(before)
        guard let target = report.targets[vip] else { return .noMove }
        if target.doubleAnswers > 0 { return .doubleAnswered(target.doubleAnswers) }
        guard let moved = target.transitions.first(where: { lab.node(ofMAC: $0.to) != before }) else { return .noMove }
        return .moved(milliseconds: Double(moved.atNs - at) / 1_000_000)
    }

    func settle(_ lab: LANLab, _ vip: String) async throws -> Int? {
        try await Task.sleep(for: .milliseconds(700))
        return try await lab.waitForOwner(vip)
    }

    /// Crash failover and graceful handover of the speakers for one VIP, `count` runs each.
    func speakerScenarios(_ lab: LANLab, vip: String, count: Int) async throws -> (crash: Runs, graceful: Runs) {
        let owner: (LANLab) async throws -> Int? = { try await settle($0, vip) }
        var crash = Runs(), graceful = Runs()
        for _ in 0..<count {
            crash.add(try await measureMove(lab, vip: vip, fault: { node in
                let at = try await lab.signalAll(node: node, SIGKILL)
                try await lab.cutLink(node: node)
                return at
            }, restore: { node in
                try await lab.setBridgePort(node: node, up: true)
                try lab.startSpeaker(node: node, ["--log-level", "warning"])
            }, owner: owner))
        }
        for _ in 0..<count {
            graceful.add(try await measureMove(lab, vip: vip, fault: { node in
                try await lab.signalAll(node: node, SIGTERM)
            }, restore: { node in
                try await Task.sleep(for: .milliseconds(300))
                try lab.startSpeaker(node: node, ["--log-level", "warning"])
            }, owner: owner))
        }
        return (crash, graceful)
    }

    /// Median reply times (µs) of a VIP and of its owner's own address, which the kernel answers.
    struct ReplyTimes {
        var vip: String
        var kernelIP: String
        /// Responder alone, by kernel timestamps.
        var vipRTT: Double, kernelRTT: Double
        /// As the client program sees it.
        var vipApplication: Double, kernelApplication: Double
    }

    func replyTimes(_ lab: LANLab, vip: String, kernelAddress: (Int) -> String) async throws -> ReplyTimes {
        guard let owner = try await settle(lab, vip) else { throw LANLab.LabError("no owner for \(vip)") }
        let kernelIP = kernelAddress(owner)
        let report = try await lab.probe([vip, kernelIP], durationMs: 3000)
        func micro(_ nanoseconds: Int64?) -> Double { Double(nanoseconds ?? 0) / 1000 }
        return ReplyTimes(vip: vip, kernelIP: kernelIP,
                          vipRTT: micro(report.targets[vip]?.rttMedianNs), kernelRTT: micro(report.targets[kernelIP]?.rttMedianNs),
                          vipApplication: micro(report.targets[vip]?.applicationRTTMedianNs),
                          kernelApplication: micro(report.targets[kernelIP]?.applicationRTTMedianNs))
    }

    /// The speaker's reply time next to the kernel's, both ways of measuring, as ratios.
    func replyTable(_ title: String, _ times: ReplyTimes, notes: [String]) -> Table {
        var table = Table(title: title, columns: ["answered by", "as a client program sees it", "ratio",
                                                  "responder alone (kernel timestamps)", "ratio"])
        table.add(["kernel (node address \(times.kernelIP))", format(times.kernelApplication), "1.00", format(times.kernelRTT), "1.00"])
        table.add(["MetalVIP speaker (VIP \(times.vip))",
                   format(times.vipApplication), String(format: "%.2f", times.vipApplication / max(times.kernelApplication, 0.001)),
                   format(times.vipRTT), String(format: "%.2f", times.vipRTT / max(times.kernelRTT, 0.001))])
        table.notes = ["goal: within 2x of the kernel"] + notes
        return table
    }

    func measure() async throws -> [Table] {
        let lab = try await LANLab(nodes: 3, binaries: Self.releaseDirectory)
        try await lab.configure(labConfig)
        try lab.startSpeakers(["--log-level", "warning"])
        let (metalCrash, metalGraceful) = try await speakerScenarios(lab, vip: vip, count: runs)
        // ARP reply time: the VIP (user space) against the owner's own address (the kernel), same veth, same run.
        let arpTimes = try await replyTimes(lab, vip: vip) { "192.0.2.\(1 + $0)" }

        // IPv6: the same scenarios for web6, answered by the NDP responder; fewer runs.
        try await lab.configure(labIPv6Services)
        let (ndpCrash, ndpGraceful) = try await speakerScenarios(lab, vip: vip6, count: runs6)
        // NDP reply time: the VIP against the owner's own IPv6 address, which the kernel answers.
        let ndpTimes = try await replyTimes(lab, vip: vip6) { "2001:db8::\(1 + $0)" }

        // The same speakers with etcd as the store: one member, then the leader of three killed under them.
        let (etcdCrash, etcdGraceful) = try await etcdScenarios()
        let leaderKill = try await etcdLeaderKillPauses(count: max(3, runs / 3))

        // keepalived on the same LAN: stop the speakers first (they hold nothing keepalived uses).
        for node in 1...lab.nodes { try await lab.signalAll(node: node, SIGTERM) }
        try await Task.sleep(for: .milliseconds(500))
        var vrrp: [String: (crash: Runs, graceful: Runs)] = [:]
        for (label, advert, count) in [("keepalived, 100 ms adverts", "0.1", runs), ("keepalived, default 1 s adverts", "1", max(3, runs / 3))] {
            let keepalived = try Keepalived(lab: lab, vip: vrrpVIP, advertInterval: advert)
            try keepalived.startAll()
            let vrrpOwner: (LANLab) async throws -> Int? = { lab in
                try await Task.sleep(for: .milliseconds(advert == "1" ? 4000 : 1200))
                return try await lab.waitForOwner(vrrpVIP, timeout: .seconds(15))
            }
            var crash = Runs(), graceful = Runs()
            let window = advert == "1" ? 6000 : 1800
            for _ in 0..<count {
                crash.add(try await measureMove(lab, vip: vrrpVIP, windowMs: window, fault: { node in
                    let at = try await lab.signalAll(node: node, SIGKILL)
                    try await lab.cutLink(node: node)
                    return at
                }, restore: { node in
                    // A crashed keepalived leaves the VIP on the interface; a rebooted machine would not.
                    try await keepalived.removeStaleAddress(node: node)
                    try await lab.setBridgePort(node: node, up: true)
                    try keepalived.start(node: node)
                }, owner: vrrpOwner))
            }
            for _ in 0..<count {
                graceful.add(try await measureMove(lab, vip: vrrpVIP, windowMs: window, fault: { node in
                    try await lab.signalAll(node: node, SIGTERM)
                }, restore: { node in
                    try await Task.sleep(for: .milliseconds(300))
                    try keepalived.start(node: node)
                }, owner: vrrpOwner))
            }
            for node in 1...lab.nodes { try await lab.signalAll(node: node, SIGKILL) }
            vrrp[label] = (crash, graceful)
        }

        var failover = Table(title: "L2 failover, as the client saw it (namespace LAN, release build; ms, median of clean runs)",
                             columns: ["system", "crash failover (kill -9 + link cut)", "graceful handover (SIGTERM)",
                                       "clean runs", "dropped (crash / handover)"])
        let metalCrashMedian = median(metalCrash.gaps), metalGracefulMedian = median(metalGraceful.gaps)
        failover.add(["MetalVIP", format(metalCrashMedian), format(metalGracefulMedian),
                      "\(metalCrash.gaps.count)+\(metalGraceful.gaps.count)", "\(metalCrash.dropped) / \(metalGraceful.dropped)"])
        failover.add(["MetalVIP, IPv6 VIP (NDP)", format(median(ndpCrash.gaps)), format(median(ndpGraceful.gaps)),
                      "\(ndpCrash.gaps.count)+\(ndpGraceful.gaps.count)", "\(ndpCrash.dropped) / \(ndpGraceful.dropped)"])
        failover.add(["MetalVIP on etcd (1 member)", format(median(etcdCrash.gaps)), format(median(etcdGraceful.gaps)),
                      "\(etcdCrash.gaps.count)+\(etcdGraceful.gaps.count)", "\(etcdCrash.dropped) / \(etcdGraceful.dropped)"])
        for label in vrrp.keys.sorted().reversed() {
            let (crash, graceful) = vrrp[label]!
            failover.add([label, format(median(crash.gaps)) + " (" + ratio(median(crash.gaps), metalCrashMedian) + ")",
                          format(median(graceful.gaps)) + " (" + ratio(median(graceful.gaps), metalGracefulMedian) + ")",
                          "\(crash.gaps.count)+\(graceful.gaps.count)", "\(crash.dropped) / \(graceful.dropped)"])
        }
        failover.notes = [
            "gap = fault to first ARP reply from another MAC; probe sends a request every 1 ms",
            "MetalVIP rows: the default embedded store (a SQLite database in a new directory)",
            "(×N) = how many times MetalVIP's median; goals: crash < 300 ms, handover < 30 ms",
            "answered twice = some request got replies from two MACs (split brain seen by the client); such runs are not in the median",
            "MetalVIP crash runs: \(metalCrash.gaps.map(format).joined(separator: ", "))",
            "MetalVIP handover runs: \(metalGraceful.gaps.map(format).joined(separator: ", "))",
            "IPv6 row: \(vip6), gap = fault to first Neighbor Advertisement from another MAC (a solicitation every 1 ms), \(runs6) runs each",
            "MetalVIP IPv6 crash runs: \(ndpCrash.gaps.map(format).joined(separator: ", "))",
            "MetalVIP IPv6 handover runs: \(ndpGraceful.gaps.map(format).joined(separator: ", "))",
            "etcd row: the same speakers and defaults with --store etcd://192.0.2.241:2379 (etcd 3.4 in its own namespace on the LAN); goal: crash < 1000 ms",
            "MetalVIP on etcd crash runs: \(etcdCrash.gaps.map(format).joined(separator: ", "))",
            "MetalVIP on etcd handover runs: \(etcdGraceful.gaps.map(format).joined(separator: ", "))",
        ]
        var pause = Table(title: "etcd leader killed under the speakers (3 members, one per namespace; ms)",
                          columns: ["longest silence for the VIP, median", "runs", "range", "answered twice"])
        pause.add([format(median(leaderKill.gaps)), "\(leaderKill.gaps.count)",
                   leaderKill.gaps.isEmpty ? "n/a" : "\(format(leaderKill.gaps.min()!))–\(format(leaderKill.gaps.max()!))",
                   "\(leaderKill.doubleAnswered)"])
        pause.notes = [
            "kill -9 of the etcd leader 1 s into a 4 s probe (a request every 1 ms); silence = longest gap between two replies",
            "etcd runs with --heartbeat-interval 50 --election-timeout 500; speakers fall silent at their 200 ms lease deadline until a new leader takes their renewals",
        ]
        let reply = replyTable("ARP reply time (median request-to-reply, µs)", arpTimes, notes: [
            "as a client sees it: request sent to reply delivered to the probe program (includes the client's own wakeup, as arping shows)",
            "responder alone: kernel timestamps on the client's interface; the speaker's thread wakeup is all of the difference",
        ])
        let ndpReply = replyTable("NDP reply time (median solicitation-to-advertisement, µs)", ndpTimes, notes: [
            "multicast solicitations to each address's solicited-node group from 2001:db8::1, every 5 ms; same veth, same run",
        ])
        return [failover, pause, reply, ndpReply]
    }

    /// Crash failover and graceful handover with the speakers on a one-member etcd on the LAN.
    func etcdScenarios() async throws -> (crash: Runs, graceful: Runs) {
        let lab = try await LANLab(nodes: 3, etcdMembers: 1, binaries: Self.releaseDirectory)
        try await lab.configure(labConfig)
        try lab.startSpeakers(["--log-level", "warning"])
        return try await speakerScenarios(lab, vip: vip, count: runs)
    }

    /// The longest silence the client saw for the VIP when the etcd leader of three was killed, per run.
    func etcdLeaderKillPauses(count: Int) async throws -> Runs {
        let lab = try await LANLab(nodes: 3, etcdMembers: 3, binaries: Self.releaseDirectory)
        guard let etcd = lab.etcd else { return Runs() }
        try await lab.configure(labConfig)
        try lab.startSpeakers(["--log-level", "warning"])
        var pauses = Runs()
        for _ in 0..<count {
            guard try await settle(lab, vip) != nil, let leader = try await etcd.leader() else {
                pauses.add(.noOwnerBefore)
                continue
            }
            let (report, _) = try await lab.probe([vip], durationMs: 4000, faultAfterMs: 1000) {
                await etcd.kill(member: leader)
            }
            try etcd.start(member: leader)
            try await etcd.waitUntilHealthy()
            guard let target = report.targets[vip] else { pauses.add(.noMove); continue }
            if target.doubleAnswers > 0 { pauses.add(.doubleAnswered(target.doubleAnswers)); continue }
            pauses.add(target.longestSilenceNs.map { .moved(milliseconds: Double($0) / 1_000_000) } ?? .noMove)
        }
        return pauses
    }

    func format(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "n/a" }

    func ratio(_ value: Double?, _ base: Double?) -> String {
        guard let value, let base, base > 0 else { return "n/a" }
        return String(format: "×%.1f", value / base)
    }
}

/// keepalived (VRRPv3) on every node of the LAN, for the same VIP, highest priority on node 1.
struct Keepalived {
    let lab: LANLab
    let vip: String
    let advertInterval: String

    func configPath(_ node: Int) -> String { lab.workPath + "/keepalived-n\(node).conf" }

    init(lab: LANLab, vip: String, advertInterval: String) throws {
        self.lab = lab
        self.vip = vip
        self.advertInterval = advertInterval
        for node in 1...lab.nodes {
            let config = """
                global_defs {
                    router_id n\(node)
                    vrrp_version 3
                    vrrp_garp_master_delay 0
                    vrrp_garp_master_repeat 5
                    enable_script_security
                }
                vrrp_instance lab {
                    state BACKUP
                    interface eth0
                    virtual_router_id 42
                    priority \(200 - node * 10)
                    advert_int \(advertInterval)
                    virtual_ipaddress {
                        \(vip)/24
                    }
                }
                """
            try config.write(toFile: configPath(node), atomically: true, encoding: .utf8)
        }
    }

    func removeStaleAddress(node: Int) async throws {
        try await LANLab.shell(["ip", "-n", "\(lab.prefix)n\(node)", "addr", "del", "\(vip)/24", "dev", "eth0"])
    }

    func startAll() throws {
        for node in 1...lab.nodes { try start(node: node) }
    }

    func start(node: Int) throws {
        let base = lab.workPath + "/keepalived-n\(node)"
        try lab.start("keepalived-n\(node)", namespace: "\(lab.prefix)n\(node)",
                      ["keepalived", "--dont-fork", "--log-console", "--vrrp", "--use-file", configPath(node),
                       "--pid", base + ".pid", "--vrrp_pid", base + "-vrrp.pid"])
    }
}
