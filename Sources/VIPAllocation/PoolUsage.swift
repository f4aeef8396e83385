import VIPModel

/// Size and fill of one family of one pool, exact even for a /64 or ::/0.
public struct FamilyUsage: Sendable, Hashable {
    public var total: AddressCount
    /// Distinct addresses held by at least one owner.
    public var inUse: AddressCount
    public var available: AddressCount { total - inUse }

    public init(total: AddressCount, inUse: AddressCount) {
        self.total = total
        self.inUse = inUse
    }
}

/// Per-family usage of one pool, for status reporting and metrics.
public struct PoolUsage: Sendable, Hashable {
    public var ipv4: FamilyUsage
    public var ipv6: FamilyUsage

    public init(ipv4: FamilyUsage, ipv6: FamilyUsage) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }

    public subscript(family: IPFamily) -> FamilyUsage {
        switch family {
        case .ipv4: ipv4
        case .ipv6: ipv6
        }
    }
}
