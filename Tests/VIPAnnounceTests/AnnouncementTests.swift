import Foundation
import Testing
import VIPAnnounce
import VIPModel
import VIPStore

/// A snapshot built in memory: pools, advertisements, services and their assignments.
struct World {
    var snapshot = ClusterSnapshot()
    var revision: Revision = 0

    mutating func record(_ key: String) -> Record {
        revision += 1
        return Record(key: key, value: Data(), createRevision: revision, modRevision: revision)
    }

    mutating func pool(_ name: String, _ addresses: [String], labels: [String: String] = [:]) throws {
        let pool = try IPAddressPool(meta: ObjectMeta(name: name, labels: labels), addresses: addresses)
        snapshot.pools.append(StoredObject(resource: pool, document: .null, record: record("ipaddresspools/default/\(name)")))
    }

    mutating func advertise(_ name: String, pools: [String] = [], nodes: [String: String]? = nil, interfaces: [String] = []) {
        let advertisement = L2Advertisement(meta: ObjectMeta(name: name), ipAddressPools: pools,
                                            nodeSelectors: nodes.map { [LabelSelector(matchLabels: $0)] } ?? [],
                                            interfaces: interfaces)
        snapshot.advertisements.append(StoredObject(resource: advertisement, document: .null, record: record("l2advertisements/default/\(name)")))
    }

    mutating func service(_ name: String, _ addresses: [String]) {
        let service = Service(meta: ObjectMeta(name: name))
        snapshot.services.append(StoredObject(resource: service, document: .null, record: record("services/default/\(name)")))
        snapshot.assignments[service.key] = StoredValue(value: ServiceAssignment(addresses: addresses.map { IPAddress($0)! }),
                                                       record: record("assignments/default/\(name)"))
    }
}

func node(_ name: String, labels: [String: String] = [:], up: Set<String> = ["eth0"]) -> NodeStatus {
    NodeStatus(name: name, labels: labels, upInterfaces: up)
}

@Suite struct RendezvousTests {
    @Test func spreadsAndStaysPutWhenUnrelatedNodesComeAndGo() {
        let nodes = (1...5).map { "node-\($0)" }
        let vips = (0..<1000).map { IPAddress(family: .ipv4, value: 0xC000_0200 + UInt128($0)) }
        var wins: [String: Int] = [:]
        var owner: [IPAddress: String] = [:]
        for vip in vips {
            let best = Rendezvous.rank(nodes, for: vip)[0]
            wins[best, default: 0] += 1
            owner[vip] = best
        }
        // Spread: every node gets a fair share (expected 200 each).
        #expect(wins.values.allSatisfy { (120...280).contains($0) }, "\(wins)")
        // Removing node-3 moves only node-3's VIPs.
        let without = nodes.filter { $0 != "node-3" }
        for vip in vips where owner[vip] != "node-3" {
            #expect(Rendezvous.rank(without, for: vip)[0] == owner[vip])
        }
        // Deterministic: a fixed score, so every process and host agrees.
        #expect(Rendezvous.score(node: "a", key: IPAddress("192.0.2.1")!) == Rendezvous.score(node: "a", key: IPAddress("192.0.2.1")!))
        #expect(Rendezvous.score(node: "a", key: IPAddress("192.0.2.1")!) != Rendezvous.score(node: "b", key: IPAddress("192.0.2.1")!))
    }
}

@Suite struct PlannerTests {
    @Test func sharedAndDualStackAddressesFormOneGroup() throws {
        var world = World()
        try world.pool("p", ["192.0.2.0/24", "2001:db8::/64"])
        world.service("web", ["192.0.2.10"])
        world.service("web-tls", ["192.0.2.10"])
        world.service("dual", ["192.0.2.10", "2001:db8::10"])
        world.service("other", ["192.0.2.20"])
        let groups = AnnouncementPlanner.groups(in: world.snapshot)
        #expect(groups.map(\.addresses) == [[IPAddress("192.0.2.10")!, IPAddress("2001:db8::10")!], [IPAddress("192.0.2.20")!]])
        #expect(groups[0].services.map(\.name) == ["dual", "web", "web-tls"])
        #expect(groups[0].key == IPAddress("192.0.2.10")!)
    }

    @Test func eligibilityFollowsAdvertisementsNodesAndInterfaces() throws {
        var world = World()
        try world.pool("lan", ["192.0.2.0/24"])
        try world.pool("dmz", ["198.51.100.0/24"])
        try world.pool("dark", ["203.0.113.0/24"])
        world.advertise("lan", pools: ["lan"], interfaces: ["eth1"])
        world.advertise("dmz", pools: ["dmz"], nodes: ["zone": "edge"])
        world.service("a", ["192.0.2.1"])
        world.service("b", ["198.51.100.1"])
        world.service("c", ["203.0.113.1"])
        let nodes = [node("n1", up: ["eth0", "eth1"]), node("n2", up: ["eth0"]), node("n3", labels: ["zone": "edge"], up: ["eth0", "eth1"])]
        let plans = AnnouncementPlanner.plan(AnnouncementPlanner.groups(in: world.snapshot), snapshot: world.snapshot, nodes: nodes)
        let lan = try #require(plans.first { $0.group.key == IPAddress("192.0.2.1")! })
        #expect(Set(lan.candidates.map(\.node)) == ["n1", "n3"], "n2 has no eth1 up")
        #expect(lan.candidates.allSatisfy { $0.interfaces == ["eth1"] })
        let dmz = try #require(plans.first { $0.group.key == IPAddress("198.51.100.1")! })
        #expect(dmz.candidates.map(\.node) == ["n3"])
        #expect(dmz.candidates[0].interfaces == ["eth0", "eth1"], "no interfaces listed: all of the node's interfaces that are up")
        let dark = try #require(plans.first { $0.group.key == IPAddress("203.0.113.1")! })
        #expect(dark.candidates.isEmpty, "a pool no advertisement selects is never announced")
    }
}

@Suite struct ClaimPlannerTests {
    let group = VIPGroup(key: IPAddress("192.0.2.10")!, addresses: [IPAddress("192.0.2.10")!, IPAddress("2001:db8::10")!],
                         services: [], pools: ["p"])

    func plan(_ nodes: [String]) -> [GroupPlan] {
        [GroupPlan(group: group, candidates: nodes.map { Candidate(node: $0, interfaces: ["eth0"]) })]
    }

    func claims(_ node: String, revision: Revision = 7, interfaces: [String] = ["eth0"]) -> [IPAddress: StoredClaim] {
        Dictionary(uniqueKeysWithValues: group.addresses.map {
            ($0, StoredClaim(claim: Claim(node: node, interfaces: interfaces, group: group.key, since: "t"), revision: revision))
        })
    }

    func decide(_ me: String, _ candidates: [String], claims: [IPAddress: StoredClaim] = [:],
                nodes: [String: NodeView] = [:], confirmed: Set<IPAddress> = []) -> [ClaimAction] {
        ClaimPlanner.decide(me: me, plans: plan(candidates), claims: claims, nodes: nodes, confirmed: confirmed, wallTime: "now")
    }

    @Test func thePreferredNodeTakesAFreeGroupWholeWithCAS() throws {
        let actions = decide("a", ["a", "b"])
        guard case .take(let taken, let interfaces, let transaction) = try #require(actions.first) else {
            Issue.record("expected take, got \(actions)")
            return
        }
        #expect(taken == group && interfaces == ["eth0"])
        #expect(Set(transaction.conditions) == [Condition("claims/192.0.2.10", .absent), Condition("claims/2001:db8::10", .absent)])
        #expect(transaction.operations.map(\.key) == ["claims/192.0.2.10", "claims/2001:db8::10"])
        #expect(decide("b", ["a", "b"]).isEmpty, "the second candidate waits")
    }

    @Test func takeoverFromADeadHolderIsFencedOnItsLeaseRevision() throws {
        let actions = decide("b", ["b"], claims: claims("a"), nodes: ["a": NodeView(live: false, leaseRevision: 41)])
        guard case .take(_, _, let transaction) = try #require(actions.first) else {
            Issue.record("expected take, got \(actions)")
            return
        }
        #expect(transaction.conditions.contains(Condition("leases/nodes/a", .modRevision(41))))
        #expect(transaction.conditions.contains(Condition("claims/192.0.2.10", .modRevision(7))))
    }

    @Test func aLiveHolderIsNeverOverwritten() {
        #expect(decide("b", ["b", "a"], claims: claims("a"), nodes: ["a": NodeView(live: true, leaseRevision: 41)]).isEmpty)
    }

    @Test func aHolderThatIsNoLongerPreferredReleasesFirst() throws {
        let actions = decide("a", ["b", "a"], claims: claims("a"), nodes: ["b": NodeView(live: true, leaseRevision: 3)])
        guard case .release(let released, let addresses, let transaction) = try #require(actions.first) else {
            Issue.record("expected release, got \(actions)")
            return
        }
        #expect(released == group && addresses == group.addresses)
        #expect(transaction.operations == [.delete(key: "claims/192.0.2.10"), .delete(key: "claims/2001:db8::10")])
        // Not a candidate at all (interface down, say): release too.
        guard case .release = try #require(decide("a", ["b"], claims: claims("a")).first) else {
            Issue.record("an ineligible holder must release")
            return
        }
    }

    @Test func ownClaimsAreConfirmedAfterALapseThenAnnounced() throws {
        guard case .confirm(_, _, let transaction) = try #require(decide("a", ["a"], claims: claims("a")).first) else {
            Issue.record("unconfirmed own claims must be proven before answering")
            return
        }
        // Proven, not rewritten: every claim must still be at the revision read, and nothing is written.
        #expect(transaction.conditions == group.addresses.map { Condition("claims/\($0)", .modRevision(7)) })
        #expect(transaction.operations.isEmpty)
        #expect(decide("a", ["a"], claims: claims("a"), confirmed: [group.key]) == [.announce(group, interfaces: ["eth0"])])
        // Interfaces changed: rewritten with the new list.
        guard case .confirm(_, _, let rewrite) = try #require(decide("a", ["a"], claims: claims("a", interfaces: ["eth1"]), confirmed: [group.key]).first) else {
            Issue.record("a changed interface list must be rewritten")
            return
        }
        #expect(rewrite.operations.map(\.key) == group.addresses.map { "claims/\($0)" })
    }

    @Test func orphanClaimsAreReleasedOrCleanedUp() throws {
        let stray = IPAddress("198.51.100.9")!
        let own = IPAddress("198.51.100.8")!
        let all: [IPAddress: StoredClaim] = [
            stray: StoredClaim(claim: Claim(node: "dead", interfaces: ["eth0"], group: stray, since: "t"), revision: 3),
            own: StoredClaim(claim: Claim(node: "a", interfaces: ["eth0"], group: own, since: "t"), revision: 4),
        ]
        let actions = ClaimPlanner.decide(me: "a", plans: [], claims: all, nodes: ["dead": NodeView(live: false, leaseRevision: nil)],
                                          confirmed: [], wallTime: "now")
        #expect(actions.count == 2)
        #expect(actions.contains { if case .release(nil, [own], _) = $0 { return true } else { return false } })
        #expect(actions.contains { action in
            guard case .cleanup([stray], let transaction) = action else { return false }
            return transaction.conditions.contains(Condition("leases/nodes/dead", .absent))
        })
    }
}

@Suite struct LocalPolicyCandidacyTests {
    func world() throws -> World {
        var world = World()
        try world.pool("lan", ["192.0.2.100-192.0.2.110"])
        world.advertise("all")
        world.service("web", ["192.0.2.100"])
        world.service("other", ["192.0.2.101"])
        return world
    }

    @Test func onlyNodesWithALocalEndpointMayAnnounceALocalService() throws {
        let world = try world()
        let web = ObjectKey(.service, namespace: "default", name: "web")
        let plans = AnnouncementPlanner.plan(AnnouncementPlanner.groups(in: world.snapshot), snapshot: world.snapshot,
                                             nodes: [node("a"), node("b"), node("c")], localEndpointNodes: [web: ["b"]])
        #expect(plans.first { $0.group.services == [web] }?.candidates.map(\.node) == ["b"])
        // A Cluster service (no entry) keeps every node.
        #expect(plans.first { $0.group.services != [web] }?.candidates.count == 3)
    }

    @Test func aLocalServiceWithNoEndpointsHasNoCandidate() throws {
        let world = try world()
        let web = ObjectKey(.service, namespace: "default", name: "web")
        let plans = AnnouncementPlanner.plan(AnnouncementPlanner.groups(in: world.snapshot), snapshot: world.snapshot,
                                             nodes: [node("a"), node("b")], localEndpointNodes: [web: []])
        #expect(plans.first { $0.group.services == [web] }?.candidates.isEmpty == true)
    }

    @Test func aNodeWhoseLocalEndpointsAllFailItsChecksGivesTheServiceUp() throws {
        let world = try world()
        let web = ObjectKey(.service, namespace: "default", name: "web")
        var failing = node("b")
        failing.unservable = [web]
        let plans = AnnouncementPlanner.plan(AnnouncementPlanner.groups(in: world.snapshot), snapshot: world.snapshot,
                                             nodes: [node("a"), failing, node("c")], localEndpointNodes: [web: ["b", "c"]])
        #expect(plans.first { $0.group.services == [web] }?.candidates.map(\.node) == ["c"])
    }
}
