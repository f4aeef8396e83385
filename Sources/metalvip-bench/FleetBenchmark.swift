import Foundation
import Logging
import Metrics
import Synchronization
import VIPAnnounce
import VIPClient
import VIPController
import VIPEtcdStore
import VIPLabHarness
import VIPLink
import VIPModel
import VIPSpeaker
import VIPStore

/// N speakers in this process against one etcd member on loopback: the real `Speaker` and `EtcdStore`, each
/// speaker with its own connection pool (as separate processes have), a counting responder instead of
/// sockets. 1k VIPs. Per N: etcd writes and watch events per second, p99 renewal, lapses, crash failover
/// of killed speakers as the others' claims show it, and CPU per speaker while idle.
/// Settings: METALVIP_BENCH_FLEET_NODES (default "10,30,100"), METALVIP_BENCH_FLEET_SECONDS (idle window, 10),
/// METALVIP_BENCH_FLEET_KILLS (crashes per N, 5), METALVIP_BENCH_FLEET_LEASE_MS and _RENEW_MS (200 and 50).
struct FleetBenchmark: BenchmarkSection {
    let name = "fleet"
    let fleetSizes = (ProcessInfo.processInfo.environment["METALVIP_BENCH_FLEET_NODES"] ?? "10,30,100")
        .split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 >= 2 && $0 <= 500 }
    let idleSeconds = min(120, max(2, Int(ProcessInfo.processInfo.environment["METALVIP_BENCH_FLEET_SECONDS"] ?? "") ?? 10))
    let kills = min(20, max(1, Int(ProcessInfo.processInfo.environment["METALVIP_BENCH_FLEET_KILLS"] ?? "") ?? 5))
    /// The speakers' lease and renew period (METALVIP_BENCH_FLEET_LEASE_MS, _RENEW_MS): the defaults unless set.
    let leaseMs = Int(ProcessInfo.processInfo.environment["METALVIP_BENCH_FLEET_LEASE_MS"] ?? "").map { min(60_000, max(50, $0)) } ?? 200
    let renewMs = Int(ProcessInfo.processInfo.environment["METALVIP_BENCH_FLEET_RENEW_MS"] ?? "").map { min(30_000, max(10, $0)) } ?? 50
    let vipCount = 1_000
    /// Failover goal at N = 100 (issue 10).
    let failoverGoalMs = 300.0

    func run() -> [Table] {
        waitForTables(orErrorTitled: "Speaker fleet on etcd") {
            FleetMetrics.bootstrap()
            var table = Table(title: "Speaker fleet on one etcd member (loopback), \(vipCount) VIPs, lease \(leaseMs) ms, renew \(renewMs) ms",
                              columns: ["nodes", "etcd writes/s", "watch events/s sent", "p99 renewal ms",
                                        "lapses (goal 0)", "renewal failures", "crash failover median ms (goal <\(Int(failoverGoalMs)) at 100)",
                                        "CPU per speaker, % of a core", "etcd CPU, % of a core", "etcd WAL fsync mean ms",
                                        "passes per speaker/s", "re-lists", "converged"])
            for nodes in fleetSizes {
                let row: Row
                do {
                    row = try await measure(nodes: nodes)
                } catch {
                    // The bench's own reads of etcd can time out when the fleet overloads it: that is this row's
                    // result, and the other sizes still run.
                    table.add(["\(nodes)"] + Array(repeating: "", count: table.columns.count - 2) + ["failed: \(error)"])
                    continue
                }
                let failover = median(row.failoversMs).map { Table.format($0, digits: 0) } ?? "none"
                let spread = row.failoversMs.isEmpty ? "" : " (\(Table.format(row.failoversMs.min()!, digits: 0))–\(Table.format(row.failoversMs.max()!, digits: 0)), \(row.failoversMs.count)/\(row.kills) moved)"
                let lapses = row.lapses == 0 ? "0" : "\(row.lapses) ✗"
                table.add(["\(nodes)", Table.format(row.writesPerSecond, digits: 0), Table.format(row.watchEventsPerSecond, digits: 0),
                           Table.format(row.p99RenewalMs, digits: 1), lapses, "\(row.renewFailures)", failover + spread,
                           Table.format(row.cpuPerSpeaker * 100, digits: 2), Table.format(row.etcdCPU * 100, digits: 1),
                           Table.format(row.fsyncMeanMs, digits: 2), Table.format(row.passesPerSpeaker, digits: 2),
                           "\(row.relists)", row.converged])
            }
            table.notes = [
                "writes/s: etcd's revision delta over a \(idleSeconds) s idle window (every claim written, nothing changing): renewals are all of it.",
                "watch events/s: etcd's own etcd_debugging_mvcc_events_total over the same window: each write goes to every speaker's one watch, so it grows as nodes².",
                "p99 renewal: metalvip_lease_renew_duration_seconds of every speaker in the window; it must stay well under the \(leaseMs) ms lease.",
                "lapses and renewal failures: metalvip_lease_lapses_total and metalvip_lease_renew_failures_total from the end of convergence to the end of the last crash (goal 0 lapses); a crashed speaker fails its renewals until its task has ended, so a few failures per crash are the crash itself.",
                "crash failover: the victim's store is cut and its task cancelled (no release), then from that instant until every VIP it claimed is claimed by another node, seen on a claims watch; \(kills) crashes per size, median (min–max).",
                "CPU: this process's getrusage over the idle window, divided by the nodes (includes each speaker's etcd client); etcd's from /proc. Section 3's idle goal for one speaker is under 1% of a core.",
            ]
            return [table]
        }
    }

    struct Row {
        var writesPerSecond = 0.0
        var watchEventsPerSecond = 0.0
        var p99RenewalMs = 0.0
        var lapses: Int64 = 0
        var renewFailures: Int64 = 0
        var failoversMs: [Double] = []
        var kills = 0
        var cpuPerSpeaker = 0.0
        var etcdCPU = 0.0
        var fsyncMeanMs = 0.0
        /// Decision passes per speaker per second in the idle window.
        var passesPerSpeaker = 0.0
        /// Watch re-listings beyond each speaker's first, over the whole run.
        var relists = 0
        var converged = ""
    }

    func measure(nodes: Int) async throws -> Row {
        let cluster = try await EtcdCluster()
        let configuration = try EtcdConfiguration(url: cluster.url)
        let admin = try EtcdStore(configuration)
        try await populate(admin)
        var logger = Logger(label: "fleet")
        // The speakers' own logs, to see why a row looks as it does (METALVIP_BENCH_FLEET_LOG=info, say).
        logger.logLevel = ProcessInfo.processInfo.environment["METALVIP_BENCH_FLEET_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        let names = (0..<nodes).map { "node-\(String(format: "%03d", $0))" }
        var fleet: [FleetMember] = []
        for (index, name) in names.enumerated() {
            let pool = EtcdConnections()
            let store = CrashableStore(try EtcdStore(configuration, logger: logger, connections: pool))
            var settings = Speaker.Settings(node: name, interfaces: ["eth0"])
            settings.leaseDuration = .milliseconds(leaseMs)
            settings.renewInterval = .milliseconds(renewMs)
            let speaker = Speaker(store: store, settings: settings,
                                  interfaces: OneInterface(mac: 0x0200_0000_0000 + UInt64(index + 1)),
                                  responder: CountingResponder(), logger: logger)
            fleet.append(FleetMember(name: name, pool: pool, store: store, speaker: speaker))
        }
        for member in fleet { member.start() }
        defer { for member in fleet { member.task.withLock { $0?.cancel() } } }

        var row = Row()
        row.converged = try await converge(admin, names: Set(names))
        let lapsesAtStart = FleetMetrics.shared.count("metalvip_lease_lapses_total")
        let failuresAtStart = FleetMetrics.shared.count("metalvip_lease_renew_failures_total")

        // The idle window.
        let etcd = EtcdProcess(dataDirectory: cluster.members[0].dataDirectory)
        let metricsURL = "http://\(cluster.members[0].clientEndpoint)/metrics"
        let revisionBefore = try await admin.list(prefix: Keyspace.controllerLease).revision
        let etcdBeforeMetrics = try await etcdMetrics(metricsURL)
        let passesBefore = await passes(fleet)
        let cpuBefore = ResourceUsage.current().cpuSeconds, etcdBefore = etcd.cpuSeconds()
        _ = FleetMetrics.shared.drainRenewals()
        let started = ContinuousClock.now
        try await Task.sleep(for: .seconds(idleSeconds))
        let elapsed = (ContinuousClock.now - started).seconds
        let renewals = FleetMetrics.shared.drainRenewals()
        let cpuAfter = ResourceUsage.current().cpuSeconds, etcdAfter = etcd.cpuSeconds()
        let revisionAfter = try await admin.list(prefix: Keyspace.controllerLease).revision
        let etcdAfterMetrics = try await etcdMetrics(metricsURL)
        let passesAfter = await passes(fleet)
        row.writesPerSecond = Double(revisionAfter - revisionBefore) / elapsed
        row.watchEventsPerSecond = (etcdAfterMetrics.eventsSent - etcdBeforeMetrics.eventsSent) / elapsed
        let fsyncs = etcdAfterMetrics.fsyncCount - etcdBeforeMetrics.fsyncCount
        row.fsyncMeanMs = fsyncs > 0 ? (etcdAfterMetrics.fsyncSeconds - etcdBeforeMetrics.fsyncSeconds) / fsyncs * 1000 : 0
        row.passesPerSpeaker = Double(passesAfter - passesBefore) / elapsed / Double(nodes)
        row.p99RenewalMs = percentile(renewals, 0.99) / 1e6
        row.cpuPerSpeaker = (cpuAfter - cpuBefore) / elapsed / Double(nodes)
        if let etcdBefore, let etcdAfter { row.etcdCPU = (etcdAfter - etcdBefore) / elapsed }

        // Crashes, one at a time, each left to settle before the next.
        row.kills = min(kills, nodes / 2)
        var alive = fleet
        for kill in 0..<row.kills {
            let victimIndex = (kill * 7 + 3) % alive.count
            let victim = alive.remove(at: victimIndex)
            if let milliseconds = try await crashFailover(admin, victim: victim) { row.failoversMs.append(milliseconds) }
            try await Task.sleep(for: .seconds(1))
        }
        row.lapses = FleetMetrics.shared.count("metalvip_lease_lapses_total") - lapsesAtStart
        row.renewFailures = FleetMetrics.shared.count("metalvip_lease_renew_failures_total") - failuresAtStart

        for member in fleet { row.relists += await member.speaker.watchListings - 1 }
        // Graceful end for the rest (bounded), then each pool is closed.
        for member in alive { member.task.withLock { $0?.cancel() } }
        for member in fleet { await member.finish(within: .seconds(5)) }
        for member in fleet { await member.pool.shutdown() }
        return row
    }

    /// The pool, the L2 advertisement and 1k single-stack IPv6 services, applied and assigned by the real
    /// controller once (the documentation range: nothing is ever sent to these addresses).
    func populate(_ store: any Store) async throws {
        var yaml = """
            apiVersion: metallb.io/v1beta1
            kind: IPAddressPool
            metadata: {name: fleet}
            spec: {addresses: ["2001:db8:f1ee::/116"]}
            ---
            apiVersion: metallb.io/v1beta1
            kind: L2Advertisement
            metadata: {name: fleet}
            """
        for index in 0..<vipCount {
            yaml += "\n---\napiVersion: v1\nkind: Service\nmetadata: {name: svc-\(index), namespace: ns-\(index % 10)}\nspec: {type: LoadBalancer, ipFamilyPolicy: SingleStack, ipFamilies: [IPv6], ports: [{port: 80}]}\n"
        }
        _ = try await Applier(store: store).apply([ManifestFile(name: "fleet.yaml", text: yaml)])
        var logger = Logger(label: "fleet-controller")
        logger.logLevel = .critical
        _ = try await Controller(store: store, identity: "fleet-controller", settings: .init(), logger: logger).runOnce(timeout: .seconds(60))
        let assigned = try await store.list(prefix: Keyspace.assignmentsPrefix).records.count
        guard assigned == vipCount else { throw LANLab.LabError("the controller assigned \(assigned) of \(vipCount) services") }
    }

    /// Waits (at most 120 s) until every VIP is claimed by a bench node and the owners held still for 1.5 s.
    func converge(_ store: any Store, names: Set<String>) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(120)
        let started = ContinuousClock.now
        var last: [String: String] = [:]
        var still = 0
        while ContinuousClock.now < deadline {
            let owners = try await claimOwners(store).owners
            if owners.count == vipCount, owners.values.allSatisfy(names.contains), owners == last {
                still += 1
                if still >= 3 {
                    return "yes, \(Table.format((ContinuousClock.now - started).seconds, digits: 1)) s, \(Set(owners.values).count) owners"
                }
            } else {
                still = 0
            }
            last = owners
            try await Task.sleep(for: .milliseconds(500))
        }
        return "no: \(last.count) of \(vipCount) claimed after 120 s"
    }

    /// Claim key -> node, and the listing's revision.
    func claimOwners(_ store: any Store) async throws -> (owners: [String: String], revision: Revision) {
        let listing = try await store.list(prefix: Keyspace.claimsPrefix)
        var owners: [String: String] = [:]
        for record in listing.records {
            if let claim = try? RecordCoding.decode(Claim.self, from: record.value) { owners[record.key] = claim.node }
        }
        return (owners, listing.revision)
    }

    /// Crashes `victim` and returns the milliseconds until the last of its VIPs was claimed by another node
    /// (nil if that took over 5 s or it owned nothing).
    func crashFailover(_ store: any Store, victim: FleetMember) async throws -> Double? {
        let (owners, revision) = try await claimOwners(store)
        let pending = Set(owners.filter { $0.value == victim.name }.keys)
        guard !pending.isEmpty else {
            victim.crash()
            return nil
        }
        let claims = store.watch(prefix: Keyspace.claimsPrefix, after: revision)
        let killed = ContinuousClock.now
        victim.crash()
        let owned = pending
        return try await withThrowingTaskGroup(of: Double?.self) { group in
            group.addTask {
                var pending = owned
                for try await event in claims {
                    guard case .put(let record) = event, pending.contains(record.key),
                          let claim = try? RecordCoding.decode(Claim.self, from: record.value), claim.node != victim.name else { continue }
                    pending.remove(record.key)
                    if pending.isEmpty { return (ContinuousClock.now - killed).seconds * 1000 }
                }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: .seconds(5))
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }

    /// From etcd's /metrics: the watch events it sent, and its WAL fsyncs (count and total seconds).
    func etcdMetrics(_ url: String) async throws -> (eventsSent: Double, fsyncCount: Double, fsyncSeconds: Double) {
        let result = try await LANLab.shell(["curl", "-s", "--max-time", "5", url])
        guard result.status == 0 else { throw LANLab.LabError("curl \(url): \(result.output)") }
        let samples = try PrometheusText.parse(result.output)
        return (PrometheusText.value(samples, "etcd_debugging_mvcc_events_total") ?? 0,
                PrometheusText.value(samples, "etcd_disk_wal_fsync_duration_seconds_count") ?? 0,
                PrometheusText.value(samples, "etcd_disk_wal_fsync_duration_seconds_sum") ?? 0)
    }

    /// Decision passes of the whole fleet so far.
    func passes(_ fleet: [FleetMember]) async -> Int {
        var total = 0
        for member in fleet { total += await member.speaker.decisionPasses }
        return total
    }

    func percentile(_ values: [Int64], _ fraction: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return Double(sorted[min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)])
    }
}

/// One speaker of the fleet: its store (which a crash cuts), its connection pool and its running task.
final class FleetMember: Sendable {
    let name: String
    let pool: EtcdConnections
    let store: CrashableStore
    let speaker: Speaker
    let task = Mutex<Task<Void, Error>?>(nil)

    init(name: String, pool: EtcdConnections, store: CrashableStore, speaker: Speaker) {
        self.name = name
        self.pool = pool
        self.store = store
        self.speaker = speaker
    }

    func start() {
        let speaker = speaker
        task.withLock { $0 = Task { try await speaker.run() } }
    }

    /// A crash as the store sees it: nothing of this node reaches etcd any more (its shutdown's release is
    /// refused too), then its task ends.
    func crash() {
        store.crashed.store(true, ordering: .relaxed)
        task.withLock { $0?.cancel() }
    }

    /// Waits for the task to end, at most `limit`.
    func finish(within limit: Duration) async {
        guard let task = task.withLock({ $0 }) else { return }
        let deadline = ContinuousClock.now + limit
        let done = Atomic<Bool>(false)
        Task {
            _ = try? await task.value
            done.store(true, ordering: .relaxed)
        }
        while !done.load(ordering: .relaxed), ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
    }
}

/// A store that a crash cuts: every call fails from then on, so a cancelled speaker cannot release anything.
final class CrashableStore: Store {
    let inner: any Store
    let crashed = Atomic<Bool>(false)

    init(_ inner: any Store) { self.inner = inner }

    var name: String { inner.name }
    var maxOperationsPerTransaction: Int { inner.maxOperationsPerTransaction }
    var transactionsInFlight: Int { inner.transactionsInFlight }

    private func check() throws {
        if crashed.load(ordering: .relaxed) { throw StoreError.unavailable("crashed by the bench") }
    }

    func get(_ key: String) async throws -> Record? { try check(); return try await inner.get(key) }
    func get(keys: [String]) async throws -> [Record?] { try check(); return try await inner.get(keys: keys) }
    func list(prefix: String) async throws -> Listing { try check(); return try await inner.list(prefix: prefix) }
    func commit(_ transaction: Transaction) async throws -> Revision { try check(); return try await inner.commit(transaction) }
    func compact(through revision: Revision) async throws { try check(); try await inner.compact(through: revision) }
    func watch(prefix: String, after: Revision) -> AsyncThrowingStream<WatchEvent, Error> {
        if crashed.load(ordering: .relaxed) {
            return AsyncThrowingStream { $0.finish(throwing: StoreError.unavailable("crashed by the bench")) }
        }
        return inner.watch(prefix: prefix, after: after)
    }
}

/// One interface, eth0, up for good.
struct OneInterface: InterfaceSource {
    let link: LinkInfo
    init(mac: UInt64) { link = LinkInfo(name: "eth0", index: 2, mac: MACAddress(value: mac), isUp: true, mtu: 1500) }
    func current() -> [LinkInfo] { [link] }
    /// Never changes; the stream ends when the speaker's loop is cancelled.
    func changes() -> AsyncStream<LinkInfo> { AsyncStream { _ in } }
}

/// Counts announcements instead of sending them.
final class CountingResponder: Responder {
    let announcements = Atomic<Int>(0)
    func open(_ interface: LinkInfo) throws {}
    func close(_ interfaceName: String) {}
    func announce(_ address: IPAddress, on interface: LinkInfo) { announcements.add(1, ordering: .relaxed) }
}

/// etcd's CPU time from /proc, found by the data directory on its command line (exactly our member).
struct EtcdProcess {
    let pid: Int32?

    init(dataDirectory: String) {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        pid = entries.compactMap(Int32.init).first { pid in
            guard let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let arguments = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return arguments.first.map { $0.hasSuffix("etcd") } == true && arguments.contains(dataDirectory + "/data")
        }
    }

    /// utime + stime from /proc/PID/stat, in seconds.
    func cpuSeconds() -> Double? { pid.flatMap(ResourceUsage.cpuSeconds(of:)) }
}

/// Records the renewal timer's samples and the lease counters; every other metric goes nowhere.
final class FleetMetrics: MetricsFactory, Sendable {
    static let shared = FleetMetrics()
    private static let installed = Mutex(false)

    /// Installs the factory once per process.
    static func bootstrap() {
        let first = installed.withLock { installed in
            defer { installed = true }
            return !installed
        }
        if first { MetricsSystem.bootstrap(shared) }
    }

    final class Samples: TimerHandler, Sendable {
        let values = Mutex<[Int64]>([])
        func recordNanoseconds(_ duration: Int64) { values.withLock { $0.append(duration) } }
    }

    final class Count: CounterHandler, Sendable {
        let value = Atomic<Int64>(0)
        func increment(by amount: Int64) { value.add(amount, ordering: .relaxed) }
        func reset() { value.store(0, ordering: .relaxed) }
    }

    private let renewals = Samples()
    private let counters = Mutex<[String: Count]>([:])
    private let nowhere = Count()

    func makeCounter(label: String, dimensions: [(String, String)]) -> CounterHandler {
        guard dimensions.contains(where: { $0 == ("component", "speaker") }) else { return nowhere }
        return counters.withLock { counters in
            if let existing = counters[label] { return existing }
            let created = Count()
            counters[label] = created
            return created
        }
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> RecorderHandler {
        NOOPMetricsHandler.instance
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> TimerHandler {
        guard label == "metalvip_lease_renew_duration_seconds", dimensions.contains(where: { $0 == ("component", "speaker") }) else {
            return NOOPMetricsHandler.instance
        }
        return renewals
    }

    func destroyCounter(_ handler: CounterHandler) {}
    func destroyRecorder(_ handler: RecorderHandler) {}
    func destroyTimer(_ handler: TimerHandler) {}

    /// The renewal durations (ns) recorded since the last call.
    func drainRenewals() -> [Int64] {
        renewals.values.withLock { values in
            defer { values.removeAll() }
            return values
        }
    }

    func count(_ label: String) -> Int64 { counters.withLock { $0[label]?.value.load(ordering: .relaxed) ?? 0 } }
}

extension Duration {
    var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}
