import VIPModel

/// Parses and builds ARP frames for IPv4 over Ethernet (RFC 826, RFC 5227). Pure: bytes in, bytes out.
///
/// Layout after the 14-byte Ethernet header: htype(2) ptype(2) hlen(1) plen(1) op(2)
/// sha(6) spa(4) tha(6) tpa(4) = 28 bytes, so a frame is 42 bytes plus any padding.
public enum ARPCodec {
    /// Ethernet header + ARP body; the smallest valid frame and the exact size of every frame we build.
    public static let frameLength = 42

    private static let hardwareEthernet: UInt16 = 1

    /// Parses an Ethernet II frame holding an ARP request for IPv4 over Ethernet
    /// (htype 1, ptype 0x0800, hlen 6, plen 4, op 1). Trailing padding is ignored.
    ///
    /// Beyond the header checks it drops requests no host should answer, as Linux does: a zero or
    /// group sender MAC, a multicast/broadcast sender IP, or a multicast target IP.
    public static func parseRequest(_ frame: UnsafeRawBufferPointer) -> Result<ARPRequest, DropReason> {
        Result { () throws(DropReason) -> ARPRequest in
            let (ethernet, message) = try parse(FrameReader(frame))
            guard message.operation == ARPOperation.request.rawValue else { throw .notRequest }
            if message.senderMAC.isMulticast || message.senderMAC == .zero { throw .invalidSenderMAC }
            if isMulticastOrBroadcast(message.senderIP) { throw .invalidSenderIP }
            if isMulticastOrBroadcast(message.targetIP) { throw .targetIsMulticast }
            return ARPRequest(
                ethernetSource: ethernet.source, ethernetDestination: ethernet.destination,
                senderMAC: message.senderMAC, senderIP: message.senderIP, targetIP: message.targetIP)
        }
    }

    /// `parseRequest` for frames held in an array.
    public static func parseRequest(_ frame: [UInt8]) -> Result<ARPRequest, DropReason> {
        frame.withUnsafeBytes { parseRequest($0) }
    }

    /// Parses any ARP reply (op 2), gratuitous or not, for probes that watch who answers.
    /// Only structural checks: an observer wants to see even odd replies.
    public static func parseReply(_ frame: UnsafeRawBufferPointer) -> Result<ARPReply, DropReason> {
        Result { () throws(DropReason) -> ARPReply in
            let (ethernet, message) = try parse(FrameReader(frame))
            guard message.operation == ARPOperation.reply.rawValue else { throw .notReply }
            return ARPReply(
                ethernetSource: ethernet.source, ethernetDestination: ethernet.destination,
                senderMAC: message.senderMAC, senderIP: message.senderIP,
                targetMAC: message.targetMAC, targetIP: message.targetIP)
        }
    }

    /// `parseReply` for frames held in an array.
    public static func parseReply(_ frame: [UInt8]) -> Result<ARPReply, DropReason> {
        frame.withUnsafeBytes { parseReply($0) }
    }

    /// The reply to `request`, claiming its target IP for `mac` (42 bytes; AF_PACKET pads on send).
    ///
    /// RFC 826: swap sender and target, put our addresses in the sender fields, and send to the new
    /// target hardware address, so the Ethernet destination is the request's *sender MAC* (as Linux
    /// does), not its Ethernet source. Probes (sender IP 0.0.0.0) get the same unicast reply with
    /// tpa 0.0.0.0 (RFC 5227 §2.1.1), which is what makes the prober back off.
    public static func reply(to request: ARPRequest, from mac: MACAddress) -> [UInt8] {
        build(
            ethernetDestination: request.senderMAC, source: mac, operation: .reply,
            senderIP: request.targetIP, targetMAC: request.senderMAC, targetIP: request.senderIP)
    }

    /// Gratuitous ARP announcing `ip` at `mac`, broadcast, so neighbours update their caches after a
    /// failover. Request form (RFC 5227 announcement): op 1, tha 00:00:00:00:00:00. Reply form: op 2,
    /// tha ff:ff:ff:ff:ff:ff. Both have spa = tpa = ip; some stacks only honour one form, so speakers send both.
    ///
    /// - Precondition: `ip` is IPv4.
    public static func gratuitous(_ ip: IPAddress, from mac: MACAddress, operation: ARPOperation) -> [UInt8] {
        build(
            ethernetDestination: .broadcast, source: mac, operation: operation, senderIP: ip,
            targetMAC: operation == .request ? .zero : .broadcast, targetIP: ip)
    }

    /// A broadcast request for `target` from (`mac`, `ip`), for tests and bench probes.
    /// Pass 0.0.0.0 as `ip` for an RFC 5227 probe.
    ///
    /// - Precondition: `target` and `ip` are IPv4.
    public static func request(for target: IPAddress, from mac: MACAddress, ip: IPAddress) -> [UInt8] {
        build(ethernetDestination: .broadcast, source: mac, operation: .request, senderIP: ip, targetMAC: .zero, targetIP: target)
    }

    /// An RFC 5227 probe for `target`: a request with sender IP 0.0.0.0.
    public static func probe(for target: IPAddress, from mac: MACAddress) -> [UInt8] {
        request(for: target, from: mac, ip: IPAddress(family: .ipv4, value: 0))
    }

    // MARK: - Internals

    /// The fixed-format ARP body, after the checks common to requests and replies.
    private struct Message {
        var operation: UInt16
        var senderMAC: MACAddress
        var senderIP: IPAddress
        var targetMAC: MACAddress
        var targetIP: IPAddress
    }

    private static func parse(_ reader: FrameReader) throws(DropReason) -> (EthernetHeader, Message) {
        let ethernet = try EthernetHeader(reader, expecting: EtherType.arp, mismatch: .notARP)
        try reader.require(0, frameLength)
        let base = EthernetHeader.length
        guard try reader.u16(base) == hardwareEthernet else { throw .badHardwareType }
        guard try reader.u16(base + 2) == EtherType.ipv4 else { throw .badProtocolType }
        guard try reader.u8(base + 4) == 6, try reader.u8(base + 5) == 4 else { throw .badAddressLengths }
        let message = Message(
            operation: try reader.u16(base + 6),
            senderMAC: try reader.mac(base + 8),
            senderIP: try reader.ipv4(base + 14),
            targetMAC: try reader.mac(base + 18),
            targetIP: try reader.ipv4(base + 24))
        return (ethernet, message)
    }

    /// 224.0.0.0/4 or 255.255.255.255: addresses no single host owns or answers for.
    private static func isMulticastOrBroadcast(_ ip: IPAddress) -> Bool {
        let v4 = UInt32(truncatingIfNeeded: ip.value)
        return v4 >> 28 == 0xE || v4 == .max
    }

    private static func build(
        ethernetDestination: MACAddress, source: MACAddress, operation: ARPOperation,
        senderIP: IPAddress, targetMAC: MACAddress, targetIP: IPAddress
    ) -> [UInt8] {
        var writer = FrameWriter(capacity: frameLength)
        EthernetHeader.write(&writer, destination: ethernetDestination, source: source, etherType: EtherType.arp)
        writer.u16(hardwareEthernet)
        writer.u16(EtherType.ipv4)
        writer.u8(6)
        writer.u8(4)
        writer.u16(operation.rawValue)
        writer.mac(source)
        writer.ipv4(senderIP)
        writer.mac(targetMAC)
        writer.ipv4(targetIP)
        return writer.bytes
    }
}
