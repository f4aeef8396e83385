/// Hand-built Ethernet frames for the tests; the packet codecs live elsewhere and are not used here.
/// Only documentation addresses (192.0.2.0/24) appear.
enum Frames {
    static let broadcast: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]

    /// An ARP frame: `operation` 1 is a request, 2 a reply.
    static func arp(operation: UInt16, destination: [UInt8], senderMAC: [UInt8], senderIP: [UInt8],
                    targetMAC: [UInt8], targetIP: [UInt8]) -> [UInt8] {
        destination + senderMAC + [0x08, 0x06]
            + [0x00, 0x01, 0x08, 0x00, 6, 4] + be16(operation)
            + senderMAC + senderIP + targetMAC + targetIP
    }

    /// An IPv4/UDP frame to the discard port, header checksum filled in, UDP checksum zero (allowed for IPv4).
    static func udp(destination: [UInt8], source: [UInt8], sourceIP: [UInt8], destinationIP: [UInt8],
                    payload: [UInt8]) -> [UInt8] {
        let udpLength = 8 + payload.count
        var ip: [UInt8] = [0x45, 0x00] + be16(UInt16(20 + udpLength)) + [0x00, 0x01, 0x40, 0x00, 64, 17, 0, 0]
            + sourceIP + destinationIP
        let sum = stride(from: 0, to: ip.count, by: 2).reduce(UInt32(0)) { $0 + (UInt32(ip[$1]) << 8 | UInt32(ip[$1 + 1])) }
        let folded = (sum & 0xffff) + (sum >> 16)
        let checksum = ~UInt16(truncatingIfNeeded: (folded & 0xffff) + (folded >> 16))
        ip[10] = UInt8(checksum >> 8)
        ip[11] = UInt8(checksum & 0xff)
        let udp = be16(40000) + be16(9) + be16(UInt16(udpLength)) + [0, 0] + payload
        return destination + source + [0x08, 0x00] + ip + udp
    }

    private static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }
}
