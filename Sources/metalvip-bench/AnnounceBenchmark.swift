import Foundation
import VIPAnnounce
import VIPLease
import VIPModel
import VIPSpeaker
import VIPStore

/// A speaker at scale: the per-request lookup in the answer table (the ARP hot path) and one full
/// decision pass (groups, candidates, claim rules) for 1k and 10k VIPs on a 3-node LAN.
struct AnnounceBenchmark: BenchmarkSection {
    let name = "announce"

    func run() -> [Table] {
        var lookup = Table(title: "Answer table lookup per ARP request (fenced: deadline checked under the lock)",
                           columns: ["VIPs", "ns/lookup (hit)", "ns/lookup (miss)"])
        var planning = Table(title: "One speaker decision pass (groups, rendezvous, claim rules), 3 nodes",
                             columns: ["VIPs", "ms/pass", "µs/VIP", "takes decided"])
        for count in [1_000, 10_000] {
            let addresses = (0..<count).map { IPAddress(family: .ipv4, value: 0x0A00_0000 + UInt128($0)) }
            let table = AnswerTable()
            table.renewed(until: .now() + .seconds(3600))
            table.announce(addresses, on: [2: MACAddress(value: 0x0200_0000_0001)], epoch: table.epoch)
            let probes = 1_000_000
            var hits = 0
            var start = ContinuousClock.now
            for index in 0..<probes where table.answer(for: addresses[index % count], on: 2) != nil { hits += 1 }
            let hit = nanoseconds(ContinuousClock.now - start) / Double(probes)
            let miss = IPAddress(family: .ipv4, value: 0xC000_0201)
            start = ContinuousClock.now
            for _ in 0..<probes where table.answer(for: miss, on: 2) != nil { hits += 1 }
            let missCost = nanoseconds(ContinuousClock.now - start) / Double(probes)
            lookup.add(["\(count)", format(hit), format(missCost)])
            precondition(hits == probes)

            let snapshot = Self.snapshot(addresses)
            let nodes = (1...3).map { NodeStatus(name: "n\($0)", labels: [:], upInterfaces: ["eth0"]) }
            let views = Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, NodeView(live: true, leaseRevision: 1)) })
            var passes: [Double] = []
            var takes = 0
            for _ in 0..<5 {
                let begin = ContinuousClock.now
                let groups = AnnouncementPlanner.groups(in: snapshot)
                let plans = AnnouncementPlanner.plan(groups, snapshot: snapshot, nodes: nodes)
                let actions = ClaimPlanner.decide(me: "n1", plans: plans, claims: [:], nodes: views, confirmed: [], wallTime: "t")
                passes.append(nanoseconds(ContinuousClock.now - begin) / 1_000_000)
                takes = actions.count
            }
            let median = passes.sorted()[passes.count / 2]
            planning.add(["\(count)", format(median), format(median * 1000 / Double(count)), "\(takes)"])
        }
        lookup.notes = ["a Swift Dictionary behind a Mutex: O(1), flat from 1k to 10k VIPs"]
        planning.notes = ["runs on each relevant store change, not per packet; ~1/3 of the VIPs are this node's by rendezvous"]
        return [lookup, planning]
    }

    /// A snapshot with one pool, one advertisement and a service per address.
    static func snapshot(_ addresses: [IPAddress]) -> ClusterSnapshot {
        var snapshot = ClusterSnapshot()
        let record = Record(key: "k", value: Data(), createRevision: 1, modRevision: 1)
        if let pool = try? IPAddressPool(meta: ObjectMeta(name: "big"), addresses: ["10.0.0.0/8"]) {
            snapshot.pools = [StoredObject(resource: pool, document: .null, record: record)]
        }
        snapshot.advertisements = [StoredObject(resource: L2Advertisement(meta: ObjectMeta(name: "all")), document: .null, record: record)]
        for (index, address) in addresses.enumerated() {
            let service = Service(meta: ObjectMeta(name: "s\(index)"))
            snapshot.services.append(StoredObject(resource: service, document: .null, record: record))
            snapshot.assignments[service.key] = StoredValue(value: ServiceAssignment(addresses: [address]), record: record)
        }
        return snapshot
    }

    func nanoseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1e9 + Double(duration.components.attoseconds) / 1e9
    }

    func format(_ value: Double) -> String { String(format: "%.1f", value) }
}
