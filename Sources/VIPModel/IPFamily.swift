/// The two address families. Ordered IPv4 first so sorted output lists IPv4 before IPv6, as MetalLB does.
public enum IPFamily: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case ipv4 = "IPv4"
    case ipv6 = "IPv6"

    /// Number of bits in an address of this family (32 or 128).
    public var bitWidth: Int {
        switch self {
        case .ipv4: 32
        case .ipv6: 128
        }
    }

    /// Largest address value in this family, so range math never has to special-case IPv4.
    public var maxValue: UInt128 {
        switch self {
        case .ipv4: UInt128(UInt32.max)
        case .ipv6: UInt128.max
        }
    }

    public static func < (lhs: IPFamily, rhs: IPFamily) -> Bool {
        lhs == .ipv4 && rhs == .ipv6
    }
}
