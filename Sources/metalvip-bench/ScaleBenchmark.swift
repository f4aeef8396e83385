import Foundation
import VIPLabHarness

/// The control plane at scale, as a user meets it: `apply`, the running controller, `get`, and idle speakers,
/// on the database, the file store and etcd (one member), with the goals of issue 10 beside each figure. Needs root (the
/// speaker half runs on the namespace LAN) and etcd installed; Tools/bench builds the release binaries.
struct ScaleBenchmark: BenchmarkSection {
    let name = "scale"
    /// Service counts for the command-line table (METALVIP_BENCH_SCALE_SERVICES, default 1000,10000).
    let serviceCounts = Self.counts("METALVIP_BENCH_SCALE_SERVICES", default: [1_000, 10_000])
    /// VIP counts for the speaker table (METALVIP_BENCH_SCALE_VIPS, default 30,1000,10000).
    let vipCounts = Self.counts("METALVIP_BENCH_SCALE_VIPS", default: [30, 1_000, 10_000])
    /// The stores to measure (METALVIP_BENCH_SCALE_STORES, default file,sqlite,etcd).
    let backends: [Backend] = {
        let text = ProcessInfo.processInfo.environment["METALVIP_BENCH_SCALE_STORES"] ?? ""
        let parsed = text.split(separator: ",").compactMap { Backend(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
        return parsed.isEmpty ? Backend.allCases : parsed
    }()
    /// How long a speaker is watched while nothing changes.
    let idleSeconds = 10.0

    static func counts(_ variable: String, default fallback: [Int]) -> [Int] {
        let text = ProcessInfo.processInfo.environment[variable] ?? ""
        let parsed = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parsed.isEmpty ? fallback : parsed
    }

    func run() -> [Table] {
        waitForTables(orErrorTitled: "scale") { try await measure() }
    }

    enum Backend: String, CaseIterable {
        case file, sqlite, etcd

        /// The `--store` scheme of an embedded backend's directory.
        var scheme: String { self == .sqlite ? "sqlite:" : "file:" }
    }

    func measure() async throws -> [Table] {
        var cli = Table(title: "Services from the command line (release; N LoadBalancer services in 50 namespaces, one IPv4 pool (198.18.0.0/15, 131k addresses) used for allocation only)",
                        columns: ["store", "services", "apply s", "apply → all assigned by the running controller s",
                                  "get services NAME ms", "get services -A s", "one more service → assigned ms (median of 5)",
                                  "controller CPU per one more service ms", "controller lease lapses"])
        for backend in backends {
            for count in serviceCounts { cli.add(try await commandLineRow(backend, services: count)) }
        }
        cli.notes = [
            "goals: apply of 10k under 1 s; 10k assigned under 2 s from apply; 100k under 20 s and t(100k)/t(10k) at most 12; get NAME with 100k stored under 50 ms; get -A of 10k under 1 s",
            "etcd is one member on loopback; each size starts from an empty store; times include process start (about 10 ms)",
            "one more service: applied after all are assigned, then polled every 10 ms; controller CPU: its CPU time over the five, per service (its lease renewals included)",
        ]
        var speakers = Table(title: "Three speakers on the namespace LAN (IPv6 VIPs from 2001:db8::1:0/112, data path on)",
                             columns: ["store", "VIPs", "apply → every VIP claimed s", "idle CPU per speaker %",
                                       "RSS per speaker MiB", "node lease lapses"])
        for backend in backends {
            for count in vipCounts { speakers.add(try await speakerRow(backend, vips: count)) }
        }
        speakers.notes = [
            "goals: 10k VIPs claimed under 5 s from apply; idle under 1% of a core and RSS under 60 MiB at 10k; under 0.5% at 30",
            "idle: CPU time from /proc/PID/stat over \(Int(idleSeconds)) s, starting 3 s after the last claim; the highest of the three speakers",
            "a claim is written right before its node answers for it; lapses are counted in the speakers' logs over the whole run",
        ]
        return [cli, speakers]
    }

    // MARK: command line

    private func commandLineRow(_ backend: Backend, services count: Int) async throws -> [String] {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("metalvip-scale-\(getpid())-\(backend)-\(count)").path
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let etcd = backend == .etcd ? try await EtcdCluster(members: 1) : nil
        let store = etcd?.url ?? backend.scheme + work + "/store"
        let manifest = work + "/services.yaml"
        try Self.services(count, pool: "198.18.0.0/15", family: "IPv4").write(toFile: manifest, atomically: true, encoding: .utf8)
        let metalvip = L2Benchmark.releaseDirectory.appendingPathComponent("metalvip").path

        let log = work + "/controller.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let controller = Process()
        controller.executableURL = URL(fileURLWithPath: metalvip)
        controller.arguments = ["controller", "--store", store, "--log-level", "warning"]
        controller.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        controller.standardError = controller.standardOutput
        try controller.run()
        defer { controller.terminate(); controller.waitUntilExit() }
        try await Task.sleep(for: .seconds(1))  // leading before the apply, as a running cluster is

        let started = monotonicNanoseconds()
        try await run(metalvip, ["apply", "-f", manifest, "--store", store])
        let applied = monotonicNanoseconds()
        let counter = StoreCounter(store: store, etcd: etcd)
        let assigned = try await counter.reached("assignments/", count, every: .milliseconds(100), tries: 1_200)  // two minutes at most
        let getOne = try await timed { try await run(metalvip, ["get", "services", "s1", "-n", "ns1", "--store", store]) }
        let getAll = try await timed { try await run(metalvip, ["get", "services", "-A", "--store", store]) }

        // Steady state: one service more at a time, as a user's next deploy is, with everything else stored.
        var oneMore: [Double] = []
        let cpuBefore = ResourceUsage.cpuSeconds(of: controller.processIdentifier) ?? 0
        for extra in 1...5 where assigned != nil {
            let single = work + "/one-more-\(extra).yaml"
            try Self.extraService(extra).write(toFile: single, atomically: true, encoding: .utf8)
            let start = monotonicNanoseconds()
            try await run(metalvip, ["apply", "-f", single, "--store", store])
            if let done = try await counter.reached("assignments/", count + extra, every: .milliseconds(10), tries: 1_000) {  // ten seconds at most
                oneMore.append(Double(done - start) / 1e6)
            }
        }
        let cpuPerChange = ((ResourceUsage.cpuSeconds(of: controller.processIdentifier) ?? 0) - cpuBefore) * 1000 / Double(max(1, oneMore.count))
        let lapses = (try? String(contentsOfFile: log, encoding: .utf8))?.components(separatedBy: "lease lapsed").count ?? 1
        return [backend.rawValue, "\(count)", Table.format(Double(applied - started) / 1e9, digits: 2),
                assigned.map { Table.format(Double($0 - started) / 1e9, digits: 2) } ?? "not all in 120 s",
                Table.format(getOne * 1000, digits: 0), Table.format(getAll, digits: 2),
                oneMore.count == 5 ? Table.format(oneMore.sorted()[2], digits: 0) : "\(oneMore.count) of 5 in 10 s each",
                Table.format(cpuPerChange, digits: 0), "\(lapses - 1)"]
    }

    // MARK: speakers

    private func speakerRow(_ backend: Backend, vips count: Int) async throws -> [String] {
        let lab = try await LANLab(nodes: 3, etcdMembers: backend == .etcd ? 1 : 0, embedded: backend.scheme,
                                   binaries: L2Benchmark.releaseDirectory)
        let manifest = lab.workPath + "/services.yaml"
        try Self.services(count, pool: "2001:db8::1:0/112", family: "IPv6").write(toFile: manifest, atomically: true, encoding: .utf8)
        try lab.start("controller", namespace: "\(lab.prefix)c", [lab.metalvip, "controller", "--store", lab.store, "--log-level", "warning"])
        try lab.startSpeakers(["--log-level", "warning"])
        try await Task.sleep(for: .seconds(2))

        let started = monotonicNanoseconds()
        try await lab.cli("apply", "-f", manifest)
        let counter = StoreCounter(store: lab.store, etcd: lab.etcd)
        let claimed = try await counter.reached("claims/", count, every: .milliseconds(100), tries: 1_800)  // three minutes at most
        try await Task.sleep(for: .seconds(3))
        let pids = (1...3).compactMap { lab.process("n\($0)")?.processIdentifier }
        let before = pids.map { ResourceUsage.cpuSeconds(of: $0) ?? 0 }
        try await Task.sleep(for: .seconds(idleSeconds))
        let after = pids.map { ResourceUsage.cpuSeconds(of: $0) ?? 0 }
        let busiest = zip(before, after).map { ($1 - $0) / idleSeconds * 100 }.max() ?? 0
        let rss = pids.compactMap(ResourceUsage.residentMiB(of:)).max() ?? 0
        let lapses = (1...3).map { lab.log("n\($0)").components(separatedBy: "node lease lapsed").count - 1 }.reduce(0, +)
        return [backend.rawValue, "\(count)", claimed.map { Table.format(Double($0 - started) / 1e9, digits: 2) } ?? "not all in 180 s",
                Table.format(busiest, digits: 2), Table.format(rss, digits: 1), "\(lapses)"]
    }

    // MARK: helpers

    /// One pool with an L2Advertisement, and `count` single-stack LoadBalancer services in 50 namespaces.
    /// One more LoadBalancer service, named apart from `services`'s.
    static func extraService(_ index: Int) -> String {
        """
        apiVersion: v1
        kind: Service
        metadata: {name: one-more-\(index), namespace: ns1}
        spec: {type: LoadBalancer, ports: [{port: 80}]}
        """
    }

    static func services(_ count: Int, pool: String, family: String) -> String {
        var documents = ["""
            apiVersion: metallb.io/v1beta1
            kind: IPAddressPool
            metadata: {name: scale, namespace: metallb-system}
            spec: {addresses: ["\(pool)"]}
            """, """
            apiVersion: metallb.io/v1beta1
            kind: L2Advertisement
            metadata: {name: scale, namespace: metallb-system}
            spec: {ipAddressPools: [scale]}
            """]
        for index in 0..<count {
            documents.append("""
                apiVersion: v1
                kind: Service
                metadata: {name: s\(index), namespace: ns\(index % 50)}
                spec: {type: LoadBalancer, ipFamilies: [\(family)], ports: [{port: 80, protocol: TCP}]}
                """)
        }
        return documents.joined(separator: "\n---\n") + "\n"
    }

    private func run(_ executable: String, _ arguments: [String]) async throws {
        let result = try await LANLab.shell([executable] + arguments)
        guard result.status == 0 else {
            throw LANLab.LabError("\(arguments.prefix(2).joined(separator: " ")) failed: \(result.output.suffix(400))")
        }
    }

    private func timed(_ body: () async throws -> Void) async throws -> Double {
        let start = monotonicNanoseconds()
        try await body()
        return Double(monotonicNanoseconds() - start) / 1e9
    }
}

/// Counts the records under a prefix without going through MetalVIP's own reads, so the count does not load
/// the process being measured: the directory's files, the sqlite3 shell's count, or etcd's own count.
struct StoreCounter {
    let store: String
    let etcd: EtcdCluster?

    /// When (monotonic nanoseconds) the count under `prefix` first reached `target`, polled `tries` times at
    /// most; nil if it never did.
    func reached(_ prefix: String, _ target: Int, every interval: Duration, tries: Int) async throws -> Int64? {
        for _ in 0..<tries {
            if try await count(prefix) >= target { return monotonicNanoseconds() }
            try await Task.sleep(for: interval)
        }
        return nil
    }

    func count(_ prefix: String) async throws -> Int {
        if let etcd {
            // A range response's count is the whole range's, whatever the limit.
            let output = try await etcd.etcdctl(["get", "--prefix", "/metalvip/" + prefix, "--limit", "1", "--keys-only", "-w", "json"])
            guard let range = output.range(of: "\"count\":") else { return 0 }
            return Int(output[range.upperBound...].prefix { $0.isNumber }) ?? 0
        }
        if store.hasPrefix(ScaleBenchmark.Backend.sqlite.scheme) {
            let database = store.dropFirst(ScaleBenchmark.Backend.sqlite.scheme.count) + "/metalvip.db"
            // Prefixes here are plain ASCII ending in "/": the range ends at the same text ending in "0".
            let query = "SELECT count(*) FROM records WHERE key >= CAST('\(prefix)' AS BLOB) AND key < CAST('\(prefix.dropLast())0' AS BLOB)"
            let result = try await LANLab.shell(["sqlite3", "-readonly", String(database), query])
            return Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }
        // A fresh store: every file in the segment's directory is a live record (no deletes, so no tombstones).
        let files = ScaleBenchmark.Backend.file.scheme
        let directory = store.hasPrefix(files) ? String(store.dropFirst(files.count)) : store
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/" + String(prefix.dropLast()))) ?? []
        return names.filter { !$0.hasPrefix(".") }.count
    }
}
