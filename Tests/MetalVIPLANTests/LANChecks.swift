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

/// The store a LAN test runs on: the file store, or a one-member etcd in its own namespace on the LAN.
enum LabStore: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case file, etcd
    var etcdMembers: Int { self == .file ? 0 : 1 }
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
