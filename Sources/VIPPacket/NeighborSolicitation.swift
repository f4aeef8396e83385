import VIPModel

/// A validated Neighbor Solicitation (ICMPv6 type 135, RFC 4861 §4.3): the IPv6 counterpart of an
/// ARP request, with everything needed to address the advertisement that answers it.
public struct NeighborSolicitation: Sendable, Hashable {
    public var ethernetSource: MACAddress
    public var ethernetDestination: MACAddress
    /// `::` for Duplicate Address Detection.
    public var sourceIP: IPAddress
    /// The target's solicited-node group for resolution, or a unicast address for NUD probes.
    public var destinationIP: IPAddress
    public var targetIP: IPAddress
    /// From the source link-layer address option, if present (never present when `sourceIP` is `::`).
    public var sourceLinkLayerAddress: MACAddress?

    public init(
        ethernetSource: MACAddress, ethernetDestination: MACAddress, sourceIP: IPAddress,
        destinationIP: IPAddress, targetIP: IPAddress, sourceLinkLayerAddress: MACAddress? = nil
    ) {
        self.ethernetSource = ethernetSource
        self.ethernetDestination = ethernetDestination
        self.sourceIP = sourceIP
        self.destinationIP = destinationIP
        self.targetIP = targetIP
        self.sourceLinkLayerAddress = sourceLinkLayerAddress
    }

    /// Duplicate Address Detection (RFC 4862 §5.4): another node wants `targetIP` for itself. Answering
    /// makes it give up, which is how the owner defends a VIP.
    public var isDuplicateAddressDetection: Bool { sourceIP.value == 0 }
}
