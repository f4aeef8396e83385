import Foundation
import Synchronization

public func monotonicNanoseconds() -> Int64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
}

/// A namespace LAN (Tools/lab) with a store, the real `metalvip` speakers and the `metalvip-lab` probe.
/// Everything it starts is killed and every namespace removed when it goes, pass or fail.
public final class LANLab: @unchecked Sendable {
    public static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// Where `metalvip` and `metalvip-lab` are: beside $METALVIP_BINARY, else the debug build.
    public static let defaultBinaries: URL = {
        if let path = ProcessInfo.processInfo.environment["METALVIP_BINARY"], !path.isEmpty {
            return URL(fileURLWithPath: path).deletingLastPathComponent()
        }
        return repository.appendingPathComponent(".build/debug")
    }()
    static let counter = Atomic<Int>(0)

    public let prefix: String
    /// What `--store` is given: the embedded store's directory (with `embedded`'s scheme in front), or the
    /// etcd cluster's `etcd://` URL.
    public let store: String
    /// The embedded store's directory; nil on etcd.
    public let storeDirectory: String?
    /// Logs, probe reports and (for the file store) the store itself live here.
    public let workPath: String
    /// The etcd members, one per namespace on the LAN, when the lab runs on etcd.
    public let etcd: EtcdCluster?
    public let nodes: Int
    public let binaries: URL
    /// The test (or bench) that made this lab: names the directory its logs are kept in.
    public let caller: String
    private let processes = ProcessGroup<String>()
    /// Node number -> its eth0 MAC.
    public private(set) var macs: [Int: String] = [:]

    /// Members of an etcd cluster on the LAN sit at 192.0.2.(240+K), clear of every pool.
    public static func etcdAddress(member index: Int) -> String { "192.0.2.\(241 + index)" }

    /// A LAN of `nodes` speakers' namespaces and a client; with `etcdMembers` > 0, an etcd cluster of
    /// that many members (one namespace each) is the store instead of a directory. `embedded` is the
    /// `--store` scheme for the directory (`file:`, `sqlite:`), or empty for whatever the binary defaults to.
    /// `caller` is the function that made the lab (a test's name), for `$METALVIP_LAB_LOGS`.
    public init(nodes: Int = 3, etcdMembers: Int = 0, embedded: String = "", binaries: URL = LANLab.defaultBinaries,
                caller: String = #function) async throws {
        precondition(getuid() == 0, "the namespace LAN needs root (CI runs as root)")
        self.binaries = binaries
        self.caller = caller
        let serial = Self.counter.add(1, ordering: .relaxed).newValue
        prefix = "mv\(getpid() % 100_000)\(serial)"
        self.nodes = nodes
        workPath = FileManager.default.temporaryDirectory.appendingPathComponent("metalvip-lan-\(prefix)").path
        try? FileManager.default.removeItem(atPath: workPath)
        let up = try await Self.shell([Self.repository.appendingPathComponent("Tools/lab").path, "up", prefix, String(nodes),
                                       String(etcdMembers)])
        guard up.status == 0 else { throw LabError("Tools/lab up failed: \(up.output)") }
        for node in 1...nodes {
            let link = try await Self.shell(["ip", "-n", "\(prefix)n\(node)", "-o", "link", "show", "eth0"]).output
            macs[node] = link.components(separatedBy: "link/ether ").dropFirst().first?.split(separator: " ").first.map(String.init)
        }
        if etcdMembers > 0 {
            let prefix = prefix
            let places = (0..<etcdMembers).map { (namespace: "\(prefix)e\($0 + 1)", address: LANLab.etcdAddress(member: $0)) }
            let cluster: EtcdCluster
            do {
                cluster = try await EtcdCluster(members: etcdMembers, namespaces: places)
            } catch {
                _ = try? Self.shellBlocking([Self.repository.appendingPathComponent("Tools/lab").path, "down", prefix])
                throw error
            }
            etcd = cluster
            store = cluster.url
            storeDirectory = nil
        } else {
            etcd = nil
            storeDirectory = workPath + "/store"
            store = embedded + workPath + "/store"
        }
        try FileManager.default.createDirectory(atPath: workPath, withIntermediateDirectories: true)
    }

    deinit {
        processes.killAll()
        _ = try? Self.shellBlocking([Self.repository.appendingPathComponent("Tools/lab").path, "down", prefix])
        keepLogs()
        try? FileManager.default.removeItem(atPath: workPath)
    }

    /// With `$METALVIP_LAB_LOGS` set (Tools/test sets it), the daemons' logs outlive the lab in
    /// `$METALVIP_LAB_LOGS/CALLER-PREFIX/`, so a failed run can show what the speakers saw.
    private func keepLogs() {
        guard let root = ProcessInfo.processInfo.environment["METALVIP_LAB_LOGS"], !root.isEmpty,
              let names = try? FileManager.default.contentsOfDirectory(atPath: workPath) else { return }
        let name = caller.prefix { $0 != "(" }
        let kept = root + "/\(name)-\(prefix)"
        guard (try? FileManager.default.createDirectory(atPath: kept, withIntermediateDirectories: true)) != nil else { return }
        for log in names where log.hasSuffix(".log") {
            try? FileManager.default.moveItem(atPath: workPath + "/" + log, toPath: kept + "/" + log)
        }
    }

    public struct LabError: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// Runs a command to completion on its own thread: the concurrency pool has two threads here, and a
    /// blocked one starves every lease and watch in the process.
    @discardableResult
    public static func shell(_ arguments: [String], stdin: String? = nil) async throws -> (status: Int32, output: String) {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result { try shellBlocking(arguments, stdin: stdin) })
            }.start()
        }
    }

    /// Blocks the calling thread: for deinit and other synchronous edges only.
    @discardableResult
    static func shellBlocking(_ arguments: [String], stdin: String? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        if let stdin {
            let input = Pipe()
            process.standardInput = input
            try process.run()
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try input.fileHandleForWriting.close()
        } else {
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    public var metalvip: String { binaries.appendingPathComponent("metalvip").path }
    public var lab: String { binaries.appendingPathComponent("metalvip-lab").path }

    @discardableResult
    public func cli(_ arguments: String..., stdin: String? = nil) async throws -> String {
        // etcd members are reachable only on the LAN: the CLI then runs from the client's namespace.
        let place = etcd == nil ? [] : ["ip", "netns", "exec", "\(prefix)c"]
        let result = try await Self.shell(place + [metalvip] + arguments + ["--store", store], stdin: stdin)
        guard result.status == 0 else { throw LabError("metalvip \(arguments.joined(separator: " ")): \(result.output)") }
        return result.output
    }

    /// Applies the manifests and reconciles once.
    public func configure(_ yaml: String) async throws {
        try await cli("apply", "-f", "-", stdin: yaml)
        try await cli("controller", "--once")
    }

    /// Starts a long-running process inside a namespace, logging to a file in the work directory.
    public func start(_ name: String, namespace: String, _ arguments: [String]) throws {
        let log = URL(fileURLWithPath: workPath + "/\(name).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        // The child has its own copy once launched; Process keeps ours open (324 log files, deleted, were
        // still open in CI's test process at the end of the LAN suites).
        let output = try FileHandle(forWritingTo: log)
        defer { try? output.close() }
        try processes.launch(name, namespace: namespace, arguments, output: output)
    }

    public func startSpeakers(_ extra: [String] = []) throws {
        for node in 1...nodes { try startSpeaker(node: node, extra) }
    }

    public func startSpeaker(node: Int, _ extra: [String] = []) throws {
        try start("n\(node)", namespace: "\(prefix)n\(node)",
                  [metalvip, "speaker", "--node", "n\(node)", "--interface", "eth0", "--store", store, "--log-level", "debug"] + extra)
    }

    public func process(_ name: String) -> Process? { processes[name] }

    public func signal(node: Int, _ signal: Int32) {
        processes.signal("n\(node)", signal)
    }

    /// Stops the node's speaker with SIGSTOP at a moment it is, or is not, inside a write to the embedded
    /// store. The two are different faults: a writer stopped while it holds the store's write lock stalls every
    /// writer of that store until it resumes, so nobody can take its VIPs. On etcd the speaker is stopped at
    /// once. Throws if the wanted moment did not come within about 5 s.
    public func pause(node: Int, insideStoreWrite: Bool) async throws {
        guard let pid = process("n\(node)")?.processIdentifier else { throw LabError("no speaker n\(node)") }
        guard etcd == nil else {
            kill(pid, SIGSTOP)
            return
        }
        let lock = try writeLock()
        let caught: Bool = await withCheckedContinuation { continuation in
            Thread {
                // Bounded: each attempt stops the speaker for well under a millisecond, then lets it run a little.
                for attempt in 0..<5000 {
                    kill(pid, SIGSTOP)
                    guard Self.waitUntilStopped(pid) else { break }
                    if lock.isHeld(by: pid) == insideStoreWrite { return continuation.resume(returning: true) }
                    kill(pid, SIGCONT)
                    usleep(UInt32(200 + attempt % 7 * 150))
                }
                kill(pid, SIGCONT)
                continuation.resume(returning: false)
            }.start()
        }
        guard caught else { throw LabError("n\(node) was never stopped \(insideStoreWrite ? "inside" : "outside") a store write") }
    }

    /// Polls /proc/PID/stat (bounded, about 100 ms) until the process shows as stopped ("T").
    private static func waitUntilStopped(_ pid: Int32) -> Bool {
        for _ in 0..<1000 {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            if stat[close...].dropFirst(2).first == "T" { return true }
            usleep(100)
        }
        return false
    }

    /// How a writer of the embedded store shows in /proc/locks: the file store's `flock` on `.meta/lock`, or
    /// SQLite's write lock, a POSIX lock on byte 120 of the database's shared-memory file (WAL mode).
    struct StoreWriteLock {
        let inode: UInt64
        let kind: Substring
        let start: Substring?

        /// Whether `pid` holds (not waits for) the lock. Lines read "1: FLOCK  ADVISORY  WRITE 4242 08:01:131074 0 EOF"
        /// or "2: POSIX  ADVISORY  WRITE 4242 08:01:131075 120 120"; waiters carry "->" after the number.
        func isHeld(by pid: Int32) -> Bool {
            guard let locks = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else { return false }
            return locks.split(separator: "\n").contains { line in
                let fields = line.split(separator: " ")
                guard fields.count >= 7, fields[1] == kind, fields[3] == "WRITE", fields[4] == "\(pid)",
                      fields[5].split(separator: ":").last == "\(inode)" else { return false }
                return start.map { fields[6] == $0 } ?? true
            }
        }
    }

    private func writeLock() throws -> StoreWriteLock {
        guard let directory = storeDirectory else { throw LabError("no embedded store") }
        var file = stat()
        if stat(directory + "/.meta/lock", &file) == 0 { return StoreWriteLock(inode: UInt64(file.st_ino), kind: "FLOCK", start: nil) }
        if stat(directory + "/metalvip.db-shm", &file) == 0 { return StoreWriteLock(inode: UInt64(file.st_ino), kind: "POSIX", start: "120") }
        throw LabError("no write lock in \(directory)")
    }

    /// Cuts the node's link at the bridge, as a dead machine's link would go.
    public func cutLink(node: Int) async throws { try await setBridgePort(node: node, up: false) }

    public func setBridgePort(node: Int, up: Bool) async throws {
        try await Self.shell(["ip", "-n", "\(prefix)br", "link", "set", "pn\(node)", up ? "up" : "down"])
    }

    /// The processes in the node's namespace.
    public func pids(node: Int) async throws -> [Int32] {
        try await Self.shell(["ip", "netns", "pids", "\(prefix)n\(node)"]).output.split(separator: "\n").compactMap { Int32($0) }
    }

    /// Signals every process in the node's namespace (a crash takes all of them). Returns the monotonic
    /// time the signals went out, after the (slow) process listing.
    @discardableResult
    public func signalAll(node: Int, _ signal: Int32) async throws -> Int64 {
        let pids = try await pids(node: node)
        let at = monotonicNanoseconds()
        for pid in pids { kill(pid, signal) }
        return at
    }

    public func setInterface(node: Int, up: Bool) async throws {
        try await Self.shell(["ip", "-n", "\(prefix)n\(node)", "link", "set", "eth0", up ? "up" : "down"])
    }

    public func node(ofMAC mac: String) -> Int? { macs.first { $0.value == mac }?.key }

    /// Probes from the client, in the background; `finish` collects the report. IPv4 targets get ARP requests
    /// from 192.0.2.1, IPv6 targets Neighbor Solicitations from 2001:db8::1 (to their solicited-node group, or
    /// unicast to `unicastMAC`).
    public func startProbe(_ targets: [String], durationMs: Int, intervalMs: Double = 5,
                           unicastMAC: String? = nil) throws -> Process {
        var arguments = [lab, "probe", "--source-ip", "192.0.2.1", "--source-ip6", "2001:db8::1",
                         "--interval-ms", String(intervalMs), "--duration-ms", String(durationMs)]
        for target in targets { arguments += ["--target", target] }
        if let unicastMAC { arguments += ["--unicast-mac", unicastMAC] }
        let output = URL(fileURLWithPath: workPath + "/probe-\(UUID().uuidString).json")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        defer { try? handle.close() }
        let process = try processes.launch("probe-\(output.lastPathComponent)", namespace: "\(prefix)c", arguments,
                                           output: handle, errors: FileHandle.standardError)
        probeOutputs.withLock { $0[process.processIdentifier] = output }
        return process
    }

    private let probeOutputs = Mutex<[Int32: URL]>([:])

    public func finish(_ probe: Process) async throws -> ProbeReport {
        for _ in 0..<3000 where probe.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        guard !probe.isRunning, probe.terminationStatus == 0,
              let url = probeOutputs.withLock({ $0[probe.processIdentifier] }) else {
            throw LabError("probe failed (status \(probe.isRunning ? -1 : probe.terminationStatus))")
        }
        return try JSONDecoder().decode(ProbeReport.self, from: Data(contentsOf: url))
    }

    /// Probes `targets` for `durationMs`, doing `fault` `faultAfterMs` in: the report, and the monotonic time
    /// just before the fault, which the moves it caused are measured from.
    public func probe(_ targets: [String], durationMs: Int, faultAfterMs: Int = 800,
                      fault: () async throws -> Void) async throws -> (report: ProbeReport, faultAt: Int64) {
        let probe = try startProbe(targets, durationMs: durationMs)
        try await Task.sleep(for: .milliseconds(faultAfterMs))
        let at = monotonicNanoseconds()
        try await fault()
        return (try await finish(probe), at)
    }

    /// A crash as a dead machine looks from the LAN: the speaker killed with -9 and its link cut.
    public func crash(node: Int) async throws {
        signal(node: node, SIGKILL)
        try await cutLink(node: node)
    }

    public func probe(_ targets: [String], durationMs: Int, unicastMAC: String? = nil) async throws -> ProbeReport {
        try await finish(try startProbe(targets, durationMs: durationMs, unicastMAC: unicastMAC))
    }

    /// The link-layer multicast groups the node's eth0 is in (`ip maddr`), lower-case: where the speaker's
    /// solicited-node memberships show up.
    public func linkGroups(node: Int) async throws -> Set<String> {
        let output = try await Self.shell(["ip", "-n", "\(prefix)n\(node)", "maddr", "show", "dev", "eth0"]).output
        return Set(output.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, fields[0].trimmingCharacters(in: .whitespaces) == "link" else { return nil }
            return fields[1].lowercased()
        })
    }

    /// Waits (bounded) until the VIP is answered by exactly one node, and returns that node.
    public func waitForOwner(_ vip: String, timeout: Duration = .seconds(10)) async throws -> Int? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let report = try await probe([vip], durationMs: 150)
            if let target = report.targets[vip], target.replies.count == 1, let mac = target.replies.keys.first {
                return node(ofMAC: mac)
            }
        }
        return nil
    }

    /// The owner once the VIP has stopped moving: the same single MAC in three probes over at least
    /// 600 ms (right after start, a VIP may sit on a node briefly before moving to its preferred one).
    public func waitForSettledOwner(_ vip: String, timeout: Duration = .seconds(15)) async throws -> Int? {
        let deadline = ContinuousClock.now + timeout
        var streak: [Int] = []
        while ContinuousClock.now < deadline {
            guard let owner = try await waitForOwner(vip, timeout: deadline - ContinuousClock.now) else { return nil }
            streak = streak.last == owner ? streak + [owner] : [owner]
            if streak.count >= 3 { return owner }
            try await Task.sleep(for: .milliseconds(300))
        }
        return nil
    }

    public func log(_ name: String) -> String {
        (try? String(contentsOfFile: workPath + "/\(name).log", encoding: .utf8)) ?? ""
    }

    /// The last `lines` lines above debug level of every daemon's log: what a failed expectation quotes.
    public func recentLogs(lines: Int = 8) -> String {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: workPath)) ?? []).filter { $0.hasSuffix(".log") }.sorted()
        return names.map { file in
            let name = String(file.dropLast(".log".count))
            let kept = log(name).split(separator: "\n").filter { !$0.contains("level=debug") && !$0.contains("level=trace") }
            return "-- \(name)\n" + kept.suffix(lines).joined(separator: "\n")
        }.joined(separator: "\n")
    }
}

/// The pools hold both families; services without `ipFamilies` stay IPv4 (web gets 192.0.2.100), so the
/// IPv6 ranges change nothing for the IPv4 tests.
public let labConfig = """
    apiVersion: metallb.io/v1beta1
    kind: IPAddressPool
    metadata: {name: lan, namespace: metallb-system}
    spec: {addresses: [192.0.2.100-192.0.2.149, 2001:db8::100-2001:db8::149]}
    ---
    apiVersion: metallb.io/v1beta1
    kind: IPAddressPool
    metadata: {name: dark, namespace: metallb-system}
    spec: {addresses: [192.0.2.200-192.0.2.209, 2001:db8::200-2001:db8::209], autoAssign: false}
    ---
    apiVersion: metallb.io/v1beta1
    kind: L2Advertisement
    metadata: {name: lan, namespace: metallb-system}
    spec: {ipAddressPools: [lan]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec: {type: LoadBalancer, ports: [{port: 80}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: hidden, annotations: {metallb.io/address-pool: dark}}
    spec: {type: LoadBalancer, ports: [{port: 80}]}
    """

/// IPv6 services on top of `labConfig`: `web6` (single-stack IPv6, gets 2001:db8::100), `dual` (both families,
/// requested, kept on one node as one group), and `hidden6` in the dark pool no advertisement selects.
public let labIPv6Services = """
    apiVersion: v1
    kind: Service
    metadata: {name: web6}
    spec: {type: LoadBalancer, ipFamilyPolicy: SingleStack, ipFamilies: [IPv6], ports: [{port: 80}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: dual, annotations: {metallb.io/loadBalancerIPs: "192.0.2.120,2001:db8::120"}}
    spec: {type: LoadBalancer, ipFamilyPolicy: RequireDualStack, ipFamilies: [IPv4, IPv6], ports: [{port: 80}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: hidden6, annotations: {metallb.io/address-pool: dark}}
    spec: {type: LoadBalancer, ipFamilyPolicy: SingleStack, ipFamilies: [IPv6], ports: [{port: 80}]}
    """
