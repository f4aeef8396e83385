import VIPModel

/// The 14-byte Ethernet II header shared by ARP and IPv6 frames.
struct EthernetHeader {
    static let length = 14

    var destination: MACAddress
    var source: MACAddress
    var etherType: UInt16

    /// Reads the header and insists on `expected` as the ethertype; `mismatch` names the drop otherwise.
    /// VLAN tags and impossible source addresses are rejected here, once, for every protocol.
    init(_ reader: FrameReader, expecting expected: UInt16, mismatch: DropReason) throws(DropReason) {
        try reader.require(0, Self.length)
        destination = try reader.mac(0)
        source = try reader.mac(6)
        etherType = try reader.u16(12)
        if EtherType.isVLANTag(etherType) { throw .vlanTagged }
        if etherType != expected { throw mismatch }
        if source.isMulticast || source == .zero { throw .invalidEthernetSource }
    }

    static func write(_ writer: inout FrameWriter, destination: MACAddress, source: MACAddress, etherType: UInt16) {
        writer.mac(destination)
        writer.mac(source)
        writer.u16(etherType)
    }
}
