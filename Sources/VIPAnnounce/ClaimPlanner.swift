import Foundation
import VIPModel
import VIPStore

/// A claim as read from the store, with its revision for compare-and-swap.
public struct StoredClaim: Sendable, Hashable {
    public var claim: Claim
    public var revision: Revision

    public init(claim: Claim, revision: Revision) {
        self.claim = claim
        self.revision = revision
    }
}

/// One node as a speaker judges it now.
public struct NodeView: Sendable, Hashable {
    public var live: Bool
    /// The node lease record's revision as observed (nil: absent). A takeover is conditioned on it, so a
    /// node that renews at the last moment keeps its claims.
    public var leaseRevision: Revision?

    public init(live: Bool, leaseRevision: Revision?) {
        self.live = live
        self.leaseRevision = leaseRevision
    }
}

/// What a speaker should do about one group.
public enum ClaimAction: Sendable, Hashable {
    /// Claim the group: free, or held by nodes whose leases expired. Announce (with gratuitous ARP) once
    /// the transaction commits.
    case take(VIPGroup, interfaces: [String], Transaction)
    /// Prove claims that are already ours: after our lease lapsed, a transaction that only checks each claim is
    /// still at the revision read (a takeover is conditioned on our old lease revision, so none can land after
    /// the renewal that ended the lapse); when the interfaces changed, a rewrite. Announce once it commits; no
    /// gratuitous burst is owed.
    case confirm(VIPGroup, interfaces: [String], Transaction)
    /// Keep answering: claimed, confirmed, unchanged.
    case announce(VIPGroup, interfaces: [String])
    /// Stop answering first, then commit: a better node is live, or this node is no longer eligible.
    case release(VIPGroup?, addresses: [IPAddress], Transaction)
    /// Claims of dead nodes on addresses nobody announces any more.
    case cleanup(addresses: [IPAddress], Transaction)
}

/// The claim rules, as a pure function of what one speaker sees.
public enum ClaimPlanner {
    public static func claimKey(_ address: IPAddress) -> String { Keyspace.claimsPrefix + address.description }

    /// The address a claim key is for; nil for a key outside the claims or one that names no address.
    public static func address(ofClaimKey key: String) -> IPAddress? {
        guard key.utf8.starts(with: Keyspace.claimsPrefix.utf8) else { return nil }
        return IPAddress(String(key.dropFirst(Keyspace.claimsPrefix.count)))
    }

    /// - Parameters:
    ///   - me: this node.
    ///   - confirmed: group keys whose claims this node wrote or confirmed since its lease last lapsed.
    public static func decide(me: String, plans: [GroupPlan], claims: [IPAddress: StoredClaim],
                              nodes: [String: NodeView], confirmed: Set<IPAddress>, wallTime: String) -> [ClaimAction] {
        var actions: [ClaimAction] = []
        var planned: Set<IPAddress> = []
        func live(_ node: String) -> Bool { nodes[node]?.live ?? false }

        for plan in plans {
            let group = plan.group
            planned.formUnion(group.addresses)
            let current = group.addresses.map { claims[$0] }
            let mine = current.compactMap { $0 }.filter { $0.claim.node == me }
            let preferred = plan.preferred?.node == me ? plan.preferred : nil

            if let preferred {
                if mine.count == group.addresses.count {
                    let unchanged = mine.allSatisfy { $0.claim.interfaces == preferred.interfaces && $0.claim.group == group.key }
                    if confirmed.contains(group.key) && unchanged {
                        actions.append(.announce(group, interfaces: preferred.interfaces))
                    } else if unchanged {
                        // Nothing to write: rewriting every claim after a lapse made three speakers' thousand
                        // claims a thousand writes each, which kept the store busy until the next lapse.
                        actions.append(.confirm(group, interfaces: preferred.interfaces, Transaction(
                            conditions: zip(group.addresses, mine).map { Condition(claimKey($0), .modRevision($1.revision)) },
                            operations: [], durability: .volatile)))
                    } else {
                        actions.append(.confirm(group, interfaces: preferred.interfaces,
                                                write(group, interfaces: preferred.interfaces, me: me, over: current, nodes: nodes, wallTime: wallTime)))
                    }
                    continue
                }
                let blocked = current.contains { stored in
                    guard let stored else { return false }
                    return stored.claim.node != me && live(stored.claim.node)
                }
                if !blocked {
                    actions.append(.take(group, interfaces: preferred.interfaces,
                                         write(group, interfaces: preferred.interfaces, me: me, over: current, nodes: nodes, wallTime: wallTime)))
                }
                // Otherwise a live node holds it; it releases once it sees this node preferred.
                continue
            }
            let held = zip(group.addresses, current).compactMap { address, stored in
                stored.flatMap { $0.claim.node == me ? (address, $0) : nil }
            }
            if !held.isEmpty {
                actions.append(.release(group, addresses: held.map(\.0), Transaction(
                    conditions: held.map { Condition(claimKey($0.0), .modRevision($0.1.revision)) },
                    operations: held.map { .delete(key: claimKey($0.0)) })))
            }
        }

        // Claims on addresses that no group has any more: ours are released, dead nodes' cleaned up.
        let orphans = claims.filter { !planned.contains($0.key) }.sorted { $0.key < $1.key }
        let ownOrphans = orphans.filter { $0.value.claim.node == me }
        if !ownOrphans.isEmpty {
            actions.append(.release(nil, addresses: ownOrphans.map(\.key), Transaction(
                conditions: ownOrphans.map { Condition(claimKey($0.key), .modRevision($0.value.revision)) },
                operations: ownOrphans.map { .delete(key: claimKey($0.key)) })))
        }
        let deadOrphans = orphans.filter { $0.value.claim.node != me && !live($0.value.claim.node) }
        if !deadOrphans.isEmpty {
            var conditions = deadOrphans.map { Condition(claimKey($0.key), .modRevision($0.value.revision)) }
            conditions += leaseConditions(Set(deadOrphans.map(\.value.claim.node)), nodes: nodes)
            actions.append(.cleanup(addresses: deadOrphans.map(\.key), Transaction(
                conditions: conditions, operations: deadOrphans.map { .delete(key: claimKey($0.key)) })))
        }
        return actions
    }

    /// Claims every address of the group for `me`, on the condition that nothing changed since it was read:
    /// each claim as it was (or absent), and each previous holder's lease still at the revision judged expired.
    static func write(_ group: VIPGroup, interfaces: [String], me: String, over current: [StoredClaim?],
                      nodes: [String: NodeView], wallTime: String) -> Transaction {
        var conditions: [Condition] = []
        var operations: [StoreOperation] = []
        for (address, stored) in zip(group.addresses, current) {
            conditions.append(Condition(claimKey(address), stored.map { .modRevision($0.revision) } ?? .absent))
            let since = stored.flatMap { $0.claim.node == me ? $0.claim.since : nil } ?? wallTime
            let claim = Claim(node: me, interfaces: interfaces, group: group.key, since: since)
            if let data = try? RecordCoding.encode(claim) { operations.append(.put(key: claimKey(address), value: data)) }
        }
        let previous = Set(current.compactMap { $0?.claim.node }.filter { $0 != me })
        conditions += leaseConditions(previous, nodes: nodes)
        return Transaction(conditions: conditions, operations: operations, durability: .volatile)
    }

    static func leaseConditions(_ holders: Set<String>, nodes: [String: NodeView]) -> [Condition] {
        holders.sorted().map { node in
            Condition(Keyspace.nodeLease(node), nodes[node]?.leaseRevision.map { .modRevision($0) } ?? .absent)
        }
    }
}
