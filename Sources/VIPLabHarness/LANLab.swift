import Foundation
import Synchronization
import Testing

/// The probe's report (see metalvip-lab), decoded.
struct ProbeReport: Decodable {
    struct Target: Decodable {
        struct Transition: Decodable { var atNs: Int64; var from: String; var to: String; var silenceNs: Int64 }
        struct Gratuitous: Decodable { var atNs: Int64; var mac: String; var operation: String }
        var requests: Int
        var answeredRequests: Int
        var replies: [String: Int]
        var doubleAnswers: Int
        var firstReplyNs: [String: Int64]
        var lastReplyNs: [String: Int64]
        var transitions: [Transition]
        var gratuitous: [Gratuitous]
        var rttMedianNs: Int64?
    }
    var startNs: Int64
    var endNs: Int64
    var targets: [String: Target]
}

func monotonicNanoseconds() -> Int64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
}

/// A namespace LAN (Tools/lab) with a store, the real `metalvip` speakers and the `metalvip-lab` probe.
/// Everything it starts is killed and every namespace removed when it goes, pass or fail.
final class LANLab: @unchecked Sendable {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let binaries: URL = {
        if let path = ProcessInfo.processInfo.environment["METALVIP_BINARY"], !path.isEmpty {
            return URL(fileURLWithPath: path).deletingLastPathComponent()
        }
        return repository.appendingPathComponent(".build/debug")
    }()
    static let counter = Atomic<Int>(0)

    let prefix: String
    let store: String
    let nodes: Int
    private let processes = Mutex<[String: Process]>([:])
    /// Node number -> its eth0 MAC.
    private(set) var macs: [Int: String] = [:]

    init(nodes: Int = 3) throws {
        precondition(getuid() == 0, "the LAN tests need root (CI runs as root)")
        let serial = Self.counter.add(1, ordering: .relaxed).newValue
        prefix = "mv\(getpid() % 100_000)\(serial)"
        self.nodes = nodes
        store = FileManager.default.temporaryDirectory.appendingPathComponent("metalvip-lan-\(prefix)").path
        try? FileManager.default.removeItem(atPath: store)
        let up = try Self.shell([Self.repository.appendingPathComponent("Tools/lab").path, "up", prefix, String(nodes)])
        guard up.status == 0 else { throw LabError("Tools/lab up failed: \(up.output)") }
        for node in 1...nodes {
            let link = try Self.shell(["ip", "-n", "\(prefix)n\(node)", "-o", "link", "show", "eth0"]).output
            macs[node] = link.components(separatedBy: "link/ether ").dropFirst().first?.split(separator: " ").first.map(String.init)
        }
    }

    deinit {
        for process in processes.withLock({ Array($0.values) }) where process.isRunning {
            kill(process.processIdentifier, SIGCONT)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        _ = try? Self.shell([Self.repository.appendingPathComponent("Tools/lab").path, "down", prefix])
        try? FileManager.default.removeItem(atPath: store)
    }

    struct LabError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Runs a command to completion (blocking; only for short setup commands).
    @discardableResult
    static func shell(_ arguments: [String], stdin: String? = nil) throws -> (status: Int32, output: String) {
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

    var metalvip: String { Self.binaries.appendingPathComponent("metalvip").path }
    var lab: String { Self.binaries.appendingPathComponent("metalvip-lab").path }

    @discardableResult
    func cli(_ arguments: String..., stdin: String? = nil) throws -> String {
        let result = try Self.shell([metalvip] + arguments + ["--store", store], stdin: stdin)
        guard result.status == 0 else { throw LabError("metalvip \(arguments.joined(separator: " ")): \(result.output)") }
        return result.output
    }

    /// Applies the manifests and reconciles once.
    func configure(_ yaml: String) throws {
        try cli("apply", "-f", "-", stdin: yaml)
        try cli("controller", "--once")
    }

    /// Starts a long-running process inside a namespace, logging to a file beside the store.
    func start(_ name: String, namespace: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", namespace] + arguments
        let log = URL(fileURLWithPath: store + "-\(name).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        processes.withLock { $0[name] = process }
    }

    func startSpeakers(_ extra: [String] = []) throws {
        for node in 1...nodes {
            try start("n\(node)", namespace: "\(prefix)n\(node)",
                      [metalvip, "speaker", "--node", "n\(node)", "--interface", "eth0", "--store", store, "--log-level", "debug"] + extra)
        }
    }

    func process(_ name: String) -> Process? { processes.withLock { $0[name] } }

    func signal(node: Int, _ signal: Int32) {
        if let process = process("n\(node)") { kill(process.processIdentifier, signal) }
    }

    /// Cuts the node's link at the bridge, as a dead machine's link would go.
    func cutLink(node: Int) throws {
        try Self.shell(["ip", "-n", "\(prefix)br", "link", "set", "pn\(node)", "down"])
    }

    func setInterface(node: Int, up: Bool) throws {
        try Self.shell(["ip", "-n", "\(prefix)n\(node)", "link", "set", "eth0", up ? "up" : "down"])
    }

    func node(ofMAC mac: String) -> Int? { macs.first { $0.value == mac }?.key }

    /// Probes from the client, in the background; `finish` collects the report.
    func startProbe(_ targets: [String], durationMs: Int, intervalMs: Double = 5) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var arguments = ["ip", "netns", "exec", "\(prefix)c", lab, "probe", "--source-ip", "192.0.2.1",
                         "--interval-ms", String(intervalMs), "--duration-ms", String(durationMs)]
        for target in targets { arguments += ["--target", target] }
        process.arguments = arguments
        let output = URL(fileURLWithPath: store + "-probe-\(UUID().uuidString).json")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = FileHandle.standardError
        process.standardInput = FileHandle.nullDevice
        try process.run()
        processes.withLock { $0["probe-\(output.lastPathComponent)"] = process }
        probeOutputs.withLock { $0[process.processIdentifier] = output }
        return process
    }

    private let probeOutputs = Mutex<[Int32: URL]>([:])

    func finish(_ probe: Process) async throws -> ProbeReport {
        for _ in 0..<3000 where probe.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        guard !probe.isRunning, probe.terminationStatus == 0,
              let url = probeOutputs.withLock({ $0[probe.processIdentifier] }) else {
            throw LabError("probe failed (status \(probe.isRunning ? -1 : probe.terminationStatus))")
        }
        return try JSONDecoder().decode(ProbeReport.self, from: Data(contentsOf: url))
    }

    func probe(_ targets: [String], durationMs: Int) async throws -> ProbeReport {
        try await finish(try startProbe(targets, durationMs: durationMs))
    }

    /// Waits (bounded) until the VIP is answered by exactly one node, and returns that node.
    func waitForOwner(_ vip: String, timeout: Duration = .seconds(10)) async throws -> Int? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let report = try await probe([vip], durationMs: 150)
            if let target = report.targets[vip], target.replies.count == 1, let mac = target.replies.keys.first {
                return node(ofMAC: mac)
            }
        }
        return nil
    }

    func log(_ name: String) -> String {
        (try? String(contentsOfFile: store + "-\(name).log", encoding: .utf8)) ?? ""
    }
}

let labConfig = """
    apiVersion: metallb.io/v1beta1
    kind: IPAddressPool
    metadata: {name: lan, namespace: metallb-system}
    spec: {addresses: [192.0.2.100-192.0.2.149]}
    ---
    apiVersion: metallb.io/v1beta1
    kind: IPAddressPool
    metadata: {name: dark, namespace: metallb-system}
    spec: {addresses: [192.0.2.200-192.0.2.209], autoAssign: false}
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
