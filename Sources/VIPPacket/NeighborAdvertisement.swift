import VIPModel

/// A validated Neighbor Advertisement (ICMPv6 type 136, RFC 4861 §4.4), parsed for probes and tests
/// that watch which MAC claims an IPv6 address.
public struct NeighborAdvertisement: Sendable, Hashable {
    /// The R/S/O bits from the first byte after the checksum.
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// The sender is a router.
        public static let router = Flags(rawValue: 0x80)
        /// Sent in response to a solicitation (never set on multicast advertisements).
        public static let solicited = Flags(rawValue: 0x40)
        /// Receivers should replace an existing cache entry: what makes a failover take effect.
        public static let override = Flags(rawValue: 0x20)
    }

    public var ethernetSource: MACAddress
    public var ethernetDestination: MACAddress
    public var sourceIP: IPAddress
    public var destinationIP: IPAddress
    public var targetIP: IPAddress
    public var flags: Flags
    /// From the target link-layer address option, if present.
    public var targetLinkLayerAddress: MACAddress?

    public init(
        ethernetSource: MACAddress, ethernetDestination: MACAddress, sourceIP: IPAddress, destinationIP: IPAddress,
        targetIP: IPAddress, flags: Flags, targetLinkLayerAddress: MACAddress? = nil
    ) {
        self.ethernetSource = ethernetSource
        self.ethernetDestination = ethernetDestination
        self.sourceIP = sourceIP
        self.destinationIP = destinationIP
        self.targetIP = targetIP
        self.flags = flags
        self.targetLinkLayerAddress = targetLinkLayerAddress
    }
}
