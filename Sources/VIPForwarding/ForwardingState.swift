import VIPModel

/// What MetalVIP's nftables table holds for one node: the VIPs, each service port's backends, and the counters.
/// Kept in memory as the committed state, so a change is rendered as a difference and the kernel's
/// ruleset is never listed back (kube-proxy's full re-list took minutes at tens of thousands of services).
public struct ForwardingState: Sendable, Hashable {
    /// The packet mark bit that asks postrouting to masquerade (`externalTrafficPolicy: Cluster`).
    /// Same bit as kube-proxy's masquerade mark, so both never disagree on a node that runs both.
    public static let defaultMasqueradeMark: UInt32 = 0x4000

    public static let empty = ForwardingState(masqueradeMark: defaultMasqueradeMark)

    /// Set by Cluster chains, tested, cleared and masqueraded at postrouting. One bit.
    public let masqueradeMark: UInt32
    var rulesByID: [RuleID: ServicePortRule]
    /// The backend counts in use: one `lbN` chain (and its maps) each. Kept so a diff need not scan all rules.
    let balancerCounts: Set<Int>
    /// Every VIP programmed, also those with no usable endpoint (their traffic is rejected).
    public private(set) var vips: Set<IPAddress>
    /// Usable endpoints (after health) per planned service; a service with none is present with 0.
    public private(set) var usableCounts: [ObjectKey: Int]

    public init(masqueradeMark: UInt32 = defaultMasqueradeMark, rules: [ServicePortRule] = [], vips: Set<IPAddress> = [],
                usableCounts: [ObjectKey: Int] = [:]) {
        precondition(masqueradeMark != 0 && masqueradeMark & (masqueradeMark - 1) == 0, "the masquerade mark is one bit")
        self.masqueradeMark = masqueradeMark
        self.rulesByID = Dictionary(rules.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var counts: Set<Int> = []
        for rule in rules { counts.insert(rule.backends.count) }
        self.balancerCounts = counts
        self.vips = vips
        self.usableCounts = usableCounts
    }

    /// Every service port with a usable backend, in no particular order.
    public var rules: [ServicePortRule] { Array(rulesByID.values) }

    /// Every service with a VIP on this node, with or without usable endpoints.
    public var services: Set<ObjectKey> { Set(usableCounts.keys) }

    /// Usable (after health) endpoints per service, for metrics and /readyz.
    public func usableEndpoints(of service: ObjectKey) -> Int { usableCounts[service] ?? 0 }

    /// `VIP . protocol . port` as nft writes a stats element -> its service, to sum element counters per service.
    public var keyServices: [String: ObjectKey] {
        var result: [String: ObjectKey] = [:]
        for rule in rulesByID.values {
            for vip in rule.vips { result[Self.key(rule.element(vip))] = rule.service }
        }
        return result
    }
}
