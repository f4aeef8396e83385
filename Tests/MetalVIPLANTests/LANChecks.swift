import Foundation
import Testing
import VIPLabHarness

/// What every LAN test asks of a probed address: no request (or solicitation) was answered by two MACs,
/// and only speakers' MACs answered.
func checked(_ target: TargetReport?, _ lab: LANLab) throws -> TargetReport {
    let target = try #require(target)
    #expect(target.doubleAnswers == 0, "two MACs answered one request \(target.doubleAnswers) times")
    #expect(target.replies.keys.allSatisfy { lab.node(ofMAC: $0) != nil }, "only speakers' MACs answer")
    return target
}

/// Probes `vip` while its `owner` crashes (`kill -9` and link cut): exactly one clean move, off the owner to
/// another speaker, within 2 s. Returns the target's report, that move, and when the crash happened.
func crashMove(_ lab: LANLab, _ vip: String, owner: Int) async throws
    -> (target: TargetReport, move: TargetReport.Transition, killedAt: Int64) {
    let (report, killedAt) = try await lab.probe([vip], durationMs: 3000) { try await lab.crash(node: owner) }
    let target = try checked(report.targets[vip], lab)
    let move = try #require(target.transitions.first, "the VIP never moved:\n\(lab.recentLogs())")
    #expect(target.transitions.count == 1)
    #expect(lab.node(ofMAC: move.from) == owner)
    let taker = try #require(lab.node(ofMAC: move.to))
    #expect(taker != owner)
    #expect(move.atNs - killedAt < 2_000_000_000, "failover happened within 2 s")
    return (target, move, killedAt)
}

/// Probes `vip` while its `owner` gets SIGTERM: exactly one clean move off the owner, well before its lease
/// could expire, and a clean exit. Returns the target's report and that move.
@discardableResult
func handoverMove(_ lab: LANLab, _ vip: String, owner: Int) async throws -> (target: TargetReport, move: TargetReport.Transition) {
    let (report, stoppedAt) = try await lab.probe([vip], durationMs: 2500) { lab.signal(node: owner, SIGTERM) }
    let target = try checked(report.targets[vip], lab)
    let move = try #require(target.transitions.first, "the VIP never moved:\n\(lab.recentLogs())")
    #expect(target.transitions.count == 1)
    #expect(lab.node(ofMAC: move.from) == owner && lab.node(ofMAC: move.to) != owner)
    #expect(move.atNs - stoppedAt < 1_000_000_000, "handover well before the lease could expire")
    let process = try #require(lab.process("n\(owner)"))
    for _ in 0..<200 where process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
    #expect(!process.isRunning && process.terminationStatus == 0, "clean exit on SIGTERM")
    return (target, move)
}

/// The store a LAN test runs on: the default embedded store (a new directory: SQLite), the file store
/// (`file:DIR`), or a one-member etcd in its own namespace on the LAN.
enum LabStore: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, file, etcd
    static let embedded: [LabStore] = [.sqlite, .file]
    var etcdMembers: Int { self == .etcd ? 1 : 0 }
    /// The `--store` scheme in front of the lab's directory.
    var scheme: String { self == .file ? "file:" : "" }
    var testDescription: String { rawValue }
}

/// Service name -> its assigned addresses, from `metalvip get services -o json`.
func assignedAddresses(_ lab: LANLab) async throws -> [String: [String]] {
    let json = try await lab.cli("get", "services", "-o", "json")
    let list = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    var result: [String: [String]] = [:]
    for item in list["items"] as? [[String: Any]] ?? [] {
        guard let name = (item["metadata"] as? [String: Any])?["name"] as? String else { continue }
        let ingress = ((item["status"] as? [String: Any])?["loadBalancer"] as? [String: Any])?["ingress"] as? [[String: Any]]
        result[name] = ingress?.compactMap { $0["ip"] as? String } ?? []
    }
    return result
}
