import VIPModel
import VIPStore

/// Addresses that must be announced by one node: an address shared by several services, and both
/// addresses of a dual-stack service (and, transitively, everything linked to them).
public struct VIPGroup: Sendable, Hashable {
    /// The lowest address: the group's name in claims and in the rendezvous hash.
    public var key: IPAddress
    /// Sorted.
    public var addresses: [IPAddress]
    /// Sorted.
    public var services: [ObjectKey]
    /// The pool of each address, by the current pools.
    public var pools: Set<String>

    public init(key: IPAddress, addresses: [IPAddress], services: [ObjectKey], pools: Set<String>) {
        self.key = key
        self.addresses = addresses
        self.services = services
        self.pools = pools
    }
}

/// Rendezvous (highest random weight) hashing: each (node, VIP) pair gets a score and the highest wins.
/// VIPs spread across nodes, and a node coming or going moves only the VIPs it wins or held.
public enum Rendezvous {
    /// FNV-1a over the node name and the address, then a 64-bit finalizer so nearby inputs spread.
    /// Deterministic across processes and hosts (unlike Swift's seeded `Hasher`).
    public static func score(node: String, key: IPAddress) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        for byte in node.utf8 { mix(byte) }
        mix(0)
        var value = key.value
        for _ in 0..<16 {
            mix(UInt8(truncatingIfNeeded: value))
            value >>= 8
        }
        hash ^= hash >> 33
        hash &*= 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        hash &*= 0xc4ce_b9fe_1a85_ec53
        hash ^= hash >> 33
        return hash
    }

    /// Nodes best first; ties (practically impossible) by name.
    public static func rank(_ nodes: [String], for key: IPAddress) -> [String] {
        nodes.map { ($0, score(node: $0, key: key)) }
            .sorted { ($0.1, $1.0) > ($1.1, $0.0) }
            .map(\.0)
    }
}

/// A node that may announce a group, and where.
public struct Candidate: Sendable, Hashable {
    public var node: String
    /// Sorted interface names the node may answer on.
    public var interfaces: [String]

    public init(node: String, interfaces: [String]) {
        self.node = node
        self.interfaces = interfaces
    }
}

public struct GroupPlan: Sendable, Hashable {
    public var group: VIPGroup
    /// Live eligible nodes, best first by rendezvous.
    public var candidates: [Candidate]

    public init(group: VIPGroup, candidates: [Candidate]) {
        self.group = group
        self.candidates = candidates
    }

    public var preferred: Candidate? { candidates.first }

    public func candidate(_ node: String) -> Candidate? { candidates.first { $0.node == node } }
}

/// Who may announce what, from the store's objects and the live nodes. Pure.
public enum AnnouncementPlanner {
    /// Groups of every assigned address of a LoadBalancer service.
    public static func groups(in snapshot: ClusterSnapshot) -> [VIPGroup] {
        var parent: [IPAddress: IPAddress] = [:]
        func find(_ address: IPAddress) -> IPAddress {
            var root = address
            while let next = parent[root], next != root { root = next }
            var walk = address
            while let next = parent[walk], next != root {
                parent[walk] = root
                walk = next
            }
            return root
        }
        func union(_ a: IPAddress, _ b: IPAddress) {
            let (ra, rb) = (find(a), find(b))
            if ra != rb { parent[max(ra, rb)] = min(ra, rb) }
        }
        var servicesByAddress: [IPAddress: [ObjectKey]] = [:]
        let loadBalancers = Set(snapshot.services.filter { $0.resource.type == .loadBalancer }.map(\.resource.key))
        for (service, assignment) in snapshot.assignments where loadBalancers.contains(service) {
            let addresses = assignment.value.addresses
            for address in addresses {
                if parent[address] == nil { parent[address] = address }
                servicesByAddress[address, default: []].append(service)
            }
            for address in addresses.dropFirst() { union(addresses[0], address) }
        }
        var members: [IPAddress: [IPAddress]] = [:]
        for address in parent.keys { members[find(address), default: []].append(address) }
        return members.map { root, addresses in
            let sorted = addresses.sorted()
            return VIPGroup(key: sorted[0], addresses: sorted,
                            services: Array(Set(sorted.flatMap { servicesByAddress[$0] ?? [] })).sorted(),
                            pools: Set(sorted.compactMap { snapshot.pool(containing: $0)?.name }))
        }.sorted { $0.key < $1.key }
    }

    /// The interfaces `node` may announce a pool on: the union over advertisements that select both the
    /// pool and the node, limited to the advertisement's interfaces when it lists any, and to those up.
    public static func interfaces(for pool: IPAddressPool, node: NodeStatus, advertisements: [L2Advertisement]) -> Set<String> {
        var result: Set<String> = []
        for advertisement in advertisements where advertisement.selects(pool: pool) && advertisement.selects(nodeLabels: node.labels) {
            result.formUnion(advertisement.interfaces.isEmpty ? node.upInterfaces
                                                              : node.upInterfaces.intersection(advertisement.interfaces))
        }
        return result
    }

    /// - Parameter localEndpointNodes: for each `externalTrafficPolicy: Local` service, the nodes with a usable
    ///   endpoint of it. As in MetalLB, only those may announce its group: the traffic stays on the node it reaches.
    public static func plan(_ groups: [VIPGroup], snapshot: ClusterSnapshot, nodes: [NodeStatus],
                            localEndpointNodes: [ObjectKey: Set<String>] = [:]) -> [GroupPlan] {
        let advertisements = snapshot.advertisements.map(\.resource)
        let pools = Dictionary(snapshot.pools.map { ($0.resource.name, $0.resource) }, uniquingKeysWith: { a, _ in a })
        return groups.map { group in
            var eligible: [String: [String]] = [:]
            let localServices = group.services.filter { localEndpointNodes[$0] != nil }
            // A group whose address left every pool has no candidates: nobody announces it.
            if group.addresses.allSatisfy({ snapshot.pool(containing: $0) != nil }) {
                for node in nodes where localServices.allSatisfy({ service in
                    localEndpointNodes[service]!.contains(node.name) && !node.unservable.contains(service)
                }) {
                    var interfaces: Set<String>?
                    for name in group.pools {
                        guard let pool = pools[name] else { interfaces = []; break }
                        let here = Self.interfaces(for: pool, node: node, advertisements: advertisements)
                        interfaces = interfaces.map { $0.intersection(here) } ?? here
                    }
                    if let interfaces, !interfaces.isEmpty { eligible[node.name] = interfaces.sorted() }
                }
            }
            let ranked = Rendezvous.rank(Array(eligible.keys), for: group.key)
            return GroupPlan(group: group, candidates: ranked.map { Candidate(node: $0, interfaces: eligible[$0]!) })
        }
    }
}
