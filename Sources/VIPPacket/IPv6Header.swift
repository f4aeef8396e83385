import VIPModel

/// The fixed 40-byte IPv6 header (RFC 8200 §3) as this module needs it: addresses, hop limit and
/// where the upper-layer message starts and ends.
struct IPv6Header {
    static let length = 40
    static let nextHeaderICMPv6: UInt8 = 58

    var payloadLength: Int
    var hopLimit: UInt8
    var source: IPAddress
    var destination: IPAddress

    /// Extension header protocol numbers (RFC 8200 §4, IANA "IPv6 Extension Header Types"), plus 59
    /// ("no next header") so an empty chain is not mistaken for an unknown protocol. NDP never needs
    /// one and walking them is attack surface, so we drop instead. A switch: no lookup table on the hot path.
    static func isExtensionHeader(_ nextHeader: UInt8) -> Bool {
        switch nextHeader {
        case 0, 43, 44, 50, 51, 59, 60, 135, 139, 140, 253, 254: true
        default: false
        }
    }

    /// Reads the header at `offset` and checks that an ICMPv6 message follows directly and that the
    /// declared payload fits in the frame (trailing Ethernet padding is allowed).
    init(_ reader: FrameReader, at offset: Int) throws(DropReason) {
        try reader.require(offset, Self.length)
        guard try reader.u8(offset) >> 4 == 6 else { throw .badIPVersion }
        payloadLength = Int(try reader.u16(offset + 4))
        let nextHeader = try reader.u8(offset + 6)
        hopLimit = try reader.u8(offset + 7)
        source = try reader.ipv6(offset + 8)
        destination = try reader.ipv6(offset + 24)
        if nextHeader != Self.nextHeaderICMPv6 {
            throw Self.isExtensionHeader(nextHeader) ? .extensionHeaders : .notICMPv6
        }
        try reader.require(offset + Self.length, payloadLength)
    }

    static func write(
        _ writer: inout FrameWriter, payloadLength: Int, hopLimit: UInt8, source: IPAddress, destination: IPAddress
    ) {
        writer.u32(0x6000_0000)  // version 6, traffic class 0, flow label 0
        writer.u16(UInt16(truncatingIfNeeded: payloadLength))
        writer.u8(nextHeaderICMPv6)
        writer.u8(hopLimit)
        writer.ipv6(source)
        writer.ipv6(destination)
    }
}
