import VIPModel

/// Parses and builds the Neighbor Discovery frames a speaker needs (RFC 4861): Ethernet + a bare
/// IPv6 header (no extension headers) + ICMPv6 Neighbor Solicitation / Advertisement.
/// Pure: bytes in, bytes out.
public enum NDPCodec {
    /// ff02::1, all nodes on the link: where DAD answers and unsolicited advertisements go.
    public static let allNodes = IPAddress(family: .ipv6, value: 0xff02 << 112 | 1)
    /// 33:33:00:00:00:01, the Ethernet group for ff02::1.
    public static let allNodesMAC = MACAddress(value: 0x3333_0000_0001)

    static let typeSolicitation: UInt8 = 135
    static let typeAdvertisement: UInt8 = 136
    /// Type, code, checksum, reserved/flags and the 16-byte target: the fixed part of NS and NA.
    static let fixedICMPLength = 24
    /// An advertisement is the fixed part plus one 8-byte target link-layer address option.
    static let advertisementICMPLength = fixedICMPLength + 8
    static let icmpOffset = EthernetHeader.length + IPv6Header.length

    /// ff02::1:ff00:0/104: the prefix that, with an address's low 24 bits, forms its solicited-node group.
    private static let solicitedNodePrefix: UInt128 = 0xff02_0000_0000_0000_0000_0001_ff00_0000

    // MARK: - Parsing

    /// Parses Ethernet (0x86DD) + IPv6 (next header 58 directly) + ICMPv6 Neighbor Solicitation,
    /// validating per RFC 4861 §7.1.1: hop limit 255, valid checksum, code 0, ICMP length >= 24,
    /// non-multicast target, options of non-zero length, and for a `::` source a solicited-node
    /// destination and no source link-layer option. The IPv6 payload length must fit the frame;
    /// trailing padding is ignored.
    ///
    /// The ICMP type is checked before the hop limit so that the ordinary ICMPv6 traffic on a link
    /// (MLD with hop limit 1, router advertisements, echo) is counted as `not_neighbor_solicitation`.
    /// Also dropped: a multicast IPv6 source, a link-layer option that is not 8 bytes, and a zero or
    /// group source link-layer address (the advertisement would be sent to it).
    public static func parseSolicitation(_ frame: UnsafeRawBufferPointer) -> Result<NeighborSolicitation, DropReason> {
        Result { () throws(DropReason) -> NeighborSolicitation in
            let reader = FrameReader(frame)
            let (ethernet, ip) = try parseHeaders(reader, type: typeSolicitation, mismatch: .notNeighborSolicitation)
            let target = try reader.ipv6(icmpOffset + 8)
            if isMulticast(target) { throw .targetIsMulticast }
            let slla = try NDPOptions.linkLayerAddress(
                ofType: NDPOptions.sourceLinkLayerAddress, in: reader,
                from: icmpOffset + fixedICMPLength, to: icmpOffset + ip.payloadLength)
            if ip.source.value == 0 {
                if !isSolicitedNodeGroup(ip.destination) { throw .unspecifiedSourceNotToSolicitedNode }
                if slla != nil { throw .unspecifiedSourceWithSourceLLAOption }
            }
            if let slla, slla.isMulticast || slla == .zero { throw .invalidSenderMAC }
            return NeighborSolicitation(
                ethernetSource: ethernet.source, ethernetDestination: ethernet.destination,
                sourceIP: ip.source, destinationIP: ip.destination, targetIP: target, sourceLinkLayerAddress: slla)
        }
    }

    /// `parseSolicitation` for frames held in an array.
    public static func parseSolicitation(_ frame: [UInt8]) -> Result<NeighborSolicitation, DropReason> {
        frame.withUnsafeBytes { parseSolicitation($0) }
    }

    /// Parses a Neighbor Advertisement (type 136) for probes, validating per RFC 4861 §7.1.2 (hop limit
    /// 255, checksum, code 0, length >= 24, non-multicast target, options of non-zero length, and no
    /// Solicited flag on a multicast destination).
    public static func parseAdvertisement(_ frame: UnsafeRawBufferPointer) -> Result<NeighborAdvertisement, DropReason> {
        Result { () throws(DropReason) -> NeighborAdvertisement in
            let reader = FrameReader(frame)
            let (ethernet, ip) = try parseHeaders(reader, type: typeAdvertisement, mismatch: .notNeighborAdvertisement)
            let flags = NeighborAdvertisement.Flags(rawValue: try reader.u8(icmpOffset + 4) & 0xE0)
            let target = try reader.ipv6(icmpOffset + 8)
            if isMulticast(target) { throw .targetIsMulticast }
            let tlla = try NDPOptions.linkLayerAddress(
                ofType: NDPOptions.targetLinkLayerAddress, in: reader,
                from: icmpOffset + fixedICMPLength, to: icmpOffset + ip.payloadLength)
            if isMulticast(ip.destination) && flags.contains(.solicited) { throw .solicitedFlagOnMulticast }
            return NeighborAdvertisement(
                ethernetSource: ethernet.source, ethernetDestination: ethernet.destination,
                sourceIP: ip.source, destinationIP: ip.destination, targetIP: target,
                flags: flags, targetLinkLayerAddress: tlla)
        }
    }

    /// `parseAdvertisement` for frames held in an array.
    public static func parseAdvertisement(_ frame: [UInt8]) -> Result<NeighborAdvertisement, DropReason> {
        frame.withUnsafeBytes { parseAdvertisement($0) }
    }

    // MARK: - Building

    /// The solicited advertisement answering `solicitation` for its target, from `mac` (86 bytes).
    ///
    /// Normal case: unicast to the solicitor (Ethernet to its link-layer option, else its Ethernet
    /// source), flags S|O. DAD case (source `::`): the solicitor has no address yet, so RFC 4861 §7.2.4
    /// says send to ff02::1 with S clear. Override is set because the speaker owns the VIP (it is not a
    /// proxy): that is what moves neighbours' caches to the new leader after a failover.
    public static func advertisement(answering solicitation: NeighborSolicitation, from mac: MACAddress) -> [UInt8] {
        if solicitation.isDuplicateAddressDetection {
            return buildAdvertisement(
                ethernetDestination: allNodesMAC, source: mac, sourceIP: solicitation.targetIP,
                destinationIP: allNodes, flags: .override, target: solicitation.targetIP)
        }
        return buildAdvertisement(
            ethernetDestination: solicitation.sourceLinkLayerAddress ?? solicitation.ethernetSource, source: mac,
            sourceIP: solicitation.targetIP, destinationIP: solicitation.sourceIP,
            flags: [.solicited, .override], target: solicitation.targetIP)
    }

    /// An unsolicited advertisement (O set, S clear) to ff02::1 announcing `ip` at `mac`, from `ip`
    /// (RFC 4861 §7.2.6): the IPv6 analogue of gratuitous ARP, sent after taking over a VIP.
    ///
    /// - Precondition: `ip` is IPv6.
    public static func unsolicitedAdvertisement(_ ip: IPAddress, from mac: MACAddress) -> [UInt8] {
        buildAdvertisement(
            ethernetDestination: allNodesMAC, source: mac, sourceIP: ip, destinationIP: allNodes,
            flags: .override, target: ip)
    }

    /// A Neighbor Solicitation for `target`, for tests and probes: to its solicited-node group (and
    /// that group's MAC), or to `unicastTo` (MAC, IP) for a NUD-style probe. Carries a source
    /// link-layer option with `mac`, except when `sourceIP` is `::` (DAD), where RFC 4861 forbids it.
    ///
    /// - Precondition: `target` and `sourceIP` (and the unicast IP) are IPv6.
    public static func solicitation(
        for target: IPAddress, from mac: MACAddress, sourceIP: IPAddress,
        unicastTo: (MACAddress, IPAddress)? = nil, hopLimit: UInt8 = 255
    ) -> [UInt8] {
        let destinationIP = unicastTo?.1 ?? solicitedNodeGroup(of: target)
        let destinationMAC = unicastTo?.0 ?? multicastMAC(for: destinationIP)
        let withOption = sourceIP.value != 0
        let icmpLength = fixedICMPLength + (withOption ? 8 : 0)
        var writer = FrameWriter(capacity: icmpOffset + icmpLength)
        EthernetHeader.write(&writer, destination: destinationMAC, source: mac, etherType: EtherType.ipv6)
        IPv6Header.write(&writer, payloadLength: icmpLength, hopLimit: hopLimit, source: sourceIP, destination: destinationIP)
        writer.u8(typeSolicitation)
        writer.u8(0)  // code
        writer.u16(0)  // checksum, filled in below
        writer.u32(0)  // reserved
        writer.ipv6(target)
        if withOption {
            writer.u8(NDPOptions.sourceLinkLayerAddress)
            writer.u8(1)
            writer.mac(mac)
        }
        return finishICMP(writer, source: sourceIP, destination: destinationIP)
    }

    // MARK: - Addresses

    /// ff02::1:ffXX:XXXX, the solicited-node group of `ip` (RFC 4291 §2.7.1): where NS for it are sent.
    ///
    /// - Precondition: `ip` is IPv6.
    public static func solicitedNodeGroup(of ip: IPAddress) -> IPAddress {
        precondition(ip.family == .ipv6, "solicited-node groups exist only for IPv6, got \(ip)")
        return IPAddress(family: .ipv6, value: solicitedNodePrefix | ip.value & 0xFF_FFFF)
    }

    /// The Ethernet group address a multicast IP maps to: 33:33 + low 32 bits for IPv6 (RFC 2464 §7),
    /// 01:00:5e + low 23 bits for IPv4 (RFC 1112 §6.4). The mapping is applied to any address given.
    public static func multicastMAC(for group: IPAddress) -> MACAddress {
        switch group.family {
        case .ipv6: MACAddress(value: 0x3333_0000_0000 | UInt64(truncatingIfNeeded: group.value & 0xFFFF_FFFF))
        case .ipv4: MACAddress(value: 0x0100_5E00_0000 | UInt64(truncatingIfNeeded: group.value & 0x7F_FFFF))
        }
    }

    /// Whether `ip` is in ff02::1:ff00:0/104.
    public static func isSolicitedNodeGroup(_ ip: IPAddress) -> Bool {
        ip.family == .ipv6 && ip.value & ~0xFF_FFFF == solicitedNodePrefix
    }

    // MARK: - Internals

    private static func isMulticast(_ ip: IPAddress) -> Bool { ip.value >> 120 == 0xFF }

    /// The checks shared by NS and NA, in an order that gives each frame its most specific reason:
    /// Ethernet, IPv6, ICMP type, then RFC 4861's hop limit, checksum, code and length.
    private static func parseHeaders(
        _ reader: FrameReader, type: UInt8, mismatch: DropReason
    ) throws(DropReason) -> (EthernetHeader, IPv6Header) {
        let ethernet = try EthernetHeader(reader, expecting: EtherType.ipv6, mismatch: .notIPv6)
        let ip = try IPv6Header(reader, at: EthernetHeader.length)
        guard ip.payloadLength >= 4 else { throw .truncatedICMP }
        guard try reader.u8(icmpOffset) == type else { throw mismatch }
        guard ip.hopLimit == 255 else { throw .hopLimitNot255 }
        var checksum = InternetChecksum.ipv6PseudoHeader(
            source: ip.source, destination: ip.destination,
            upperLayerLength: UInt32(ip.payloadLength), nextHeader: IPv6Header.nextHeaderICMPv6)
        checksum.add(try reader.slice(icmpOffset, ip.payloadLength))
        guard checksum.isValid else { throw .badChecksum }
        guard try reader.u8(icmpOffset + 1) == 0 else { throw .badICMPCode }
        guard ip.payloadLength >= fixedICMPLength else { throw .truncatedICMP }
        if isMulticast(ip.source) { throw .sourceIsMulticast }
        return (ethernet, ip)
    }

    private static func buildAdvertisement(
        ethernetDestination: MACAddress, source: MACAddress, sourceIP: IPAddress, destinationIP: IPAddress,
        flags: NeighborAdvertisement.Flags, target: IPAddress
    ) -> [UInt8] {
        var writer = FrameWriter(capacity: icmpOffset + advertisementICMPLength)
        EthernetHeader.write(&writer, destination: ethernetDestination, source: source, etherType: EtherType.ipv6)
        IPv6Header.write(
            &writer, payloadLength: advertisementICMPLength, hopLimit: 255, source: sourceIP, destination: destinationIP)
        writer.u8(typeAdvertisement)
        writer.u8(0)  // code
        writer.u16(0)  // checksum, filled in below
        writer.u8(flags.rawValue)
        writer.zeros(3)
        writer.ipv6(target)
        writer.u8(NDPOptions.targetLinkLayerAddress)
        writer.u8(1)
        writer.mac(source)
        return finishICMP(writer, source: sourceIP, destination: destinationIP)
    }

    /// Fills in the ICMPv6 checksum of a frame whose ICMP message runs from `icmpOffset` to the end.
    private static func finishICMP(_ writer: FrameWriter, source: IPAddress, destination: IPAddress) -> [UInt8] {
        var writer = writer
        let checksum = writer.bytes.withUnsafeBytes {
            InternetChecksum.icmpv6(
                source: source, destination: destination,
                message: UnsafeRawBufferPointer(rebasing: $0[icmpOffset...]))
        }
        writer.set16(checksum, at: icmpOffset + 2)
        return writer.bytes
    }
}
