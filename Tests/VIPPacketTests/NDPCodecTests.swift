import Testing
import VIPModel
import VIPPacket

/// An Ethernet + IPv6 + ICMPv6 frame assembled field by field in the test, with the checksum from
/// the reference implementation, so each RFC 4861 rule can be broken one field at a time.
struct ICMPv6Frame {
    var ethernetDestination = MACAddress("33:33:ff:00:00:10")!
    var ethernetSource = peerMAC
    var etherType: UInt16 = 0x86DD
    var versionByte: UInt8 = 0x60
    var nextHeader: UInt8 = 58
    var hopLimit: UInt8 = 255
    var source = ip("2001:db8::1")
    var destination = ip("ff02::1:ff00:10")
    var type: UInt8 = 135
    var code: UInt8 = 0
    var flags: UInt8 = 0
    var target = ip("2001:db8::10")
    var options: [UInt8] = [1, 1] + peerMAC.bytes
    /// Cut the ICMP message (and the payload length) to this many bytes, checksum still correct.
    var messageLength: Int? = nil
    var corruptChecksum = false
    /// Bytes between the IPv6 header and the ICMP message (an extension header).
    var extensionHeader: [UInt8] = []

    var bytes: [UInt8] {
        var message = [type, code, 0, 0, flags, 0, 0, 0] + addressBytes(target) + options
        if let messageLength { message = Array(message.prefix(messageLength)) }
        let payload = extensionHeader + message
        var frame = ethernetDestination.bytes + ethernetSource.bytes + [UInt8(etherType >> 8), UInt8(etherType & 0xFF)]
        frame += [versionByte, 0, 0, 0, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF), nextHeader, hopLimit]
        frame += addressBytes(source) + addressBytes(destination)
        let pseudo = addressBytes(source) + addressBytes(destination)
            + [0, 0, UInt8(message.count >> 8), UInt8(message.count & 0xFF), 0, 0, 0, 58]
        var checksum = ~referenceOnesComplementSum(pseudo + message)
        if corruptChecksum { checksum ^= 0x0100 }
        if message.count >= 4 {
            message[2] = UInt8(checksum >> 8)
            message[3] = UInt8(checksum & 0xFF)
        }
        return frame + extensionHeader + message
    }
}

@Suite struct NDPCodecTests {
    let vip = ip("2001:db8::10")
    let peerIP = ip("2001:db8::1")

    // MARK: Addresses

    @Test func solicitedNodeGroupAndMAC() {
        let group = NDPCodec.solicitedNodeGroup(of: ip("2001:db8::1:2:3"))
        #expect(group == ip("ff02::1:ff02:3"))
        #expect(NDPCodec.multicastMAC(for: group) == MACAddress("33:33:ff:02:00:03")!)
        #expect(NDPCodec.isSolicitedNodeGroup(group))
        #expect(!NDPCodec.isSolicitedNodeGroup(ip("ff02::1")))
        #expect(!NDPCodec.isSolicitedNodeGroup(ip("2001:db8::1")))
        #expect(NDPCodec.multicastMAC(for: ip("ff02::1")) == MACAddress("33:33:00:00:00:01")!)
        #expect(NDPCodec.multicastMAC(for: ip("239.129.2.3")) == MACAddress("01:00:5e:01:02:03")!)
    }

    // MARK: Solicitations

    @Test func solicitationBuilderMatchesHandBuiltFrame() {
        let built = NDPCodec.solicitation(for: vip, from: peerMAC, sourceIP: peerIP)
        #expect(built == ICMPv6Frame().bytes)
        #expect(icmpChecksumVerifies(built))
    }

    @Test func multicastSolicitationParses() throws {
        let ns = try NDPCodec.parseSolicitation(ICMPv6Frame().bytes).get()
        #expect(ns == NeighborSolicitation(
            ethernetSource: peerMAC, ethernetDestination: MACAddress("33:33:ff:00:00:10")!,
            sourceIP: peerIP, destinationIP: ip("ff02::1:ff00:10"), targetIP: vip, sourceLinkLayerAddress: peerMAC))
        #expect(!ns.isDuplicateAddressDetection)
    }

    @Test func unicastSolicitationParses() throws {
        let frame = NDPCodec.solicitation(for: vip, from: peerMAC, sourceIP: peerIP, unicastTo: (ourMAC, vip))
        let ns = try NDPCodec.parseSolicitation(frame).get()
        #expect(ns.ethernetDestination == ourMAC)
        #expect(ns.destinationIP == vip)
        #expect(ns.targetIP == vip)
    }

    @Test func builderHopLimitIsHonoured() {
        let frame = NDPCodec.solicitation(for: vip, from: peerMAC, sourceIP: peerIP, hopLimit: 64)
        #expect(frame[21] == 64)
        #expect(NDPCodec.parseSolicitation(frame).failure == .hopLimitNot255)
    }

    @Test func unknownOptionsAreSkippedAndFirstLinkLayerOptionWins() throws {
        var frame = ICMPv6Frame()
        frame.options = [14, 1, 1, 2, 3, 4, 5, 6] + [1, 1] + peerMAC.bytes + [1, 1] + otherMAC.bytes
        #expect(try NDPCodec.parseSolicitation(frame.bytes).get().sourceLinkLayerAddress == peerMAC)
        frame.options = []
        #expect(try NDPCodec.parseSolicitation(frame.bytes).get().sourceLinkLayerAddress == nil)
    }

    @Test func trailingPaddingAndMisalignmentAreFine() throws {
        let frame = [0xEE] + ICMPv6Frame().bytes + [UInt8](repeating: 0, count: 30)
        let ns = frame.withUnsafeBytes { NDPCodec.parseSolicitation(UnsafeRawBufferPointer(rebasing: $0[1...])) }
        #expect(ns.success?.targetIP == vip)
    }

    /// One broken frame and the reason it must be dropped for; named in test output by `name` alone.
    struct Violation: Sendable, CustomTestStringConvertible {
        var name: String
        var frame: [UInt8]
        var reason: DropReason
        var testDescription: String { "\(name) → \(reason.label)" }
    }

    static func violation(_ change: (inout ICMPv6Frame) -> Void) -> [UInt8] {
        var frame = ICMPv6Frame()
        change(&frame)
        return frame.bytes
    }

    /// RFC 4861 §7.1.1, one rule at a time, then the extra checks this codec makes.
    static let violations: [Violation] = [
        Violation(name: "hop limit 254", frame: violation { $0.hopLimit = 254 }, reason: .hopLimitNot255),
        Violation(name: "bad checksum", frame: violation { $0.corruptChecksum = true }, reason: .badChecksum),
        Violation(name: "code 1", frame: violation { $0.code = 1 }, reason: .badICMPCode),
        Violation(name: "ICMP length 20", frame: violation { $0.messageLength = 20 }, reason: .truncatedICMP),
        Violation(name: "ICMP length 3", frame: violation { $0.messageLength = 3 }, reason: .truncatedICMP),
        Violation(name: "multicast target", frame: violation { $0.target = ip("ff02::1") }, reason: .targetIsMulticast),
        Violation(name: "zero-length option", frame: violation { $0.options = [1, 0] + peerMAC.bytes }, reason: .badOptionLength),
        Violation(
            name: "zero-length unknown option",
            frame: violation { $0.options = [1, 1] + peerMAC.bytes + [99, 0, 0, 0, 0, 0, 0, 0] }, reason: .badOptionLength),
        Violation(name: ":: source with SLLA", frame: violation { $0.source = ip("::") }, reason: .unspecifiedSourceWithSourceLLAOption),
        Violation(name: ":: source to unicast", frame: violation {
            $0.source = ip("::")
            $0.destination = ip("2001:db8::10")
            $0.options = []
        }, reason: .unspecifiedSourceNotToSolicitedNode),
        Violation(name: ":: source to all-nodes", frame: violation {
            $0.source = ip("::")
            $0.destination = ip("ff02::1")
            $0.options = []
        }, reason: .unspecifiedSourceNotToSolicitedNode),
        Violation(name: "option past the end", frame: violation { $0.options = [1, 2] + peerMAC.bytes }, reason: .truncatedOption),
        Violation(name: "stray byte after options", frame: violation { $0.options = [1, 1] + peerMAC.bytes + [0] }, reason: .truncatedOption),
        Violation(
            name: "16-byte SLLA",
            frame: violation { $0.options = [1, 2] + peerMAC.bytes + [0, 0, 0, 0, 0, 0, 0, 0] },
            reason: .badLinkLayerAddressOption),
        Violation(name: "multicast SLLA", frame: violation { $0.options = [1, 1, 0x33, 0x33, 0, 0, 0, 1] }, reason: .invalidSenderMAC),
        Violation(name: "multicast source", frame: violation { $0.source = ip("ff02::2") }, reason: .sourceIsMulticast),
        Violation(name: "IP version 4", frame: violation { $0.versionByte = 0x45 }, reason: .badIPVersion),
        Violation(name: "hop-by-hop header", frame: violation {
            $0.nextHeader = 0
            $0.extensionHeader = [58, 0, 1, 4, 0, 0, 0, 0]
        }, reason: .extensionHeaders),
        Violation(name: "fragment header", frame: violation {
            $0.nextHeader = 44
            $0.extensionHeader = [58, 0, 0, 0, 0, 0, 0, 1]
        }, reason: .extensionHeaders),
        Violation(name: "UDP", frame: violation { $0.nextHeader = 17 }, reason: .notICMPv6),
        Violation(name: "echo request", frame: violation { $0.type = 128 }, reason: .notNeighborSolicitation),
        Violation(name: "advertisement", frame: violation { $0.type = 136 }, reason: .notNeighborSolicitation),
        Violation(name: "IPv4 ethertype", frame: violation { $0.etherType = 0x0800 }, reason: .notIPv6),
        Violation(name: "ARP ethertype", frame: violation { $0.etherType = 0x0806 }, reason: .notIPv6),
        Violation(name: "802.1Q", frame: violation { $0.etherType = 0x8100 }, reason: .vlanTagged),
        Violation(name: "802.1ad", frame: violation { $0.etherType = 0x88A8 }, reason: .vlanTagged),
        Violation(
            name: "multicast Ethernet source",
            frame: violation { $0.ethernetSource = MACAddress("33:33:00:00:00:01")! }, reason: .invalidEthernetSource),
    ]

    @Test(arguments: violations)
    func dropsViolation(_ violation: Violation) {
        #expect(NDPCodec.parseSolicitation(violation.frame).failure == violation.reason, "\(violation.name)")
    }

    @Test func payloadLengthMustFitFrame() {
        var frame = ICMPv6Frame().bytes
        setPayloadLength(&frame, 33)
        #expect(NDPCodec.parseSolicitation(frame).failure == .truncated)
        setPayloadLength(&frame, 0xFFFF)
        #expect(NDPCodec.parseSolicitation(frame).failure == .truncated)
    }

    @Test func everyTruncationIsTruncated() {
        let frames = [
            ICMPv6Frame().bytes,
            NDPCodec.unsolicitedAdvertisement(vip, from: ourMAC),
        ]
        for frame in frames {
            for length in 0..<frame.count {
                let prefix = Array(frame[..<length])
                #expect(NDPCodec.parseSolicitation(prefix).failure == .truncated, "length \(length)")
                #expect(NDPCodec.parseAdvertisement(prefix).failure == .truncated, "length \(length)")
            }
        }
    }

    // MARK: Advertisements

    @Test func advertisementAnsweringSolicitation() throws {
        let ns = try NDPCodec.parseSolicitation(ICMPv6Frame().bytes).get()
        let na = NDPCodec.advertisement(answering: ns, from: ourMAC)
        #expect(na.count == 86)
        #expect(Array(na[0..<14]) == peerMAC.bytes + ourMAC.bytes + [0x86, 0xDD])
        #expect(Array(na[14..<22]) == [0x60, 0, 0, 0, 0, 32, 58, 255])
        #expect(Array(na[22..<38]) == addressBytes(vip))  // from the target
        #expect(Array(na[38..<54]) == addressBytes(peerIP))  // to the solicitor
        #expect(na[54] == 136 && na[55] == 0)
        #expect(Array(na[58..<62]) == [0x60, 0, 0, 0])  // S|O, R clear
        #expect(Array(na[62..<78]) == addressBytes(vip))
        #expect(Array(na[78..<86]) == [2, 1] + ourMAC.bytes)
        #expect(icmpChecksumVerifies(na))
        #expect(fixChecksum(na) == na)

        let parsed = try NDPCodec.parseAdvertisement(na).get()
        #expect(parsed == NeighborAdvertisement(
            ethernetSource: ourMAC, ethernetDestination: peerMAC, sourceIP: vip, destinationIP: peerIP,
            targetIP: vip, flags: [.solicited, .override], targetLinkLayerAddress: ourMAC))
    }

    @Test func advertisementWithoutSLLAGoesToEthernetSource() throws {
        var frame = ICMPv6Frame()
        frame.options = []
        frame.ethernetDestination = ourMAC
        frame.destination = vip
        let ns = try NDPCodec.parseSolicitation(frame.bytes).get()
        #expect(ns.sourceLinkLayerAddress == nil)
        let na = NDPCodec.advertisement(answering: ns, from: ourMAC)
        #expect(Array(na[0..<6]) == peerMAC.bytes)
        #expect(icmpChecksumVerifies(na))
    }

    @Test func advertisementPrefersSLLAOverEthernetSource() throws {
        var frame = ICMPv6Frame()
        frame.options = [1, 1] + otherMAC.bytes
        let na = NDPCodec.advertisement(answering: try NDPCodec.parseSolicitation(frame.bytes).get(), from: ourMAC)
        #expect(Array(na[0..<6]) == otherMAC.bytes)
    }

    @Test func duplicateAddressDetectionIsAnsweredToAllNodesWithoutSolicitedFlag() throws {
        let dad = NDPCodec.solicitation(for: vip, from: peerMAC, sourceIP: ip("::"))
        var expected = ICMPv6Frame()
        expected.source = ip("::")
        expected.options = []
        #expect(dad == expected.bytes)

        let ns = try NDPCodec.parseSolicitation(dad).get()
        #expect(ns.isDuplicateAddressDetection)
        #expect(ns.sourceLinkLayerAddress == nil)
        let na = NDPCodec.advertisement(answering: ns, from: ourMAC)
        #expect(Array(na[0..<6]) == hex("33 33 00 00 00 01"))
        #expect(Array(na[38..<54]) == addressBytes(ip("ff02::1")))
        #expect(na[58] == 0x20)  // Override only
        #expect(icmpChecksumVerifies(na))
        let parsed = try NDPCodec.parseAdvertisement(na).get()
        #expect(parsed.flags == .override)
        #expect(parsed.destinationIP == NDPCodec.allNodes)
    }

    @Test func unsolicitedAdvertisement() throws {
        let na = NDPCodec.unsolicitedAdvertisement(vip, from: ourMAC)
        #expect(Array(na[0..<12]) == hex("33 33 00 00 00 01") + ourMAC.bytes)
        #expect(Array(na[22..<38]) == addressBytes(vip))
        #expect(Array(na[38..<54]) == addressBytes(ip("ff02::1")))
        #expect(na[21] == 255)
        #expect(na[58] == 0x20)
        #expect(icmpChecksumVerifies(na))
        let parsed = try NDPCodec.parseAdvertisement(na).get()
        #expect(parsed.targetIP == vip && parsed.targetLinkLayerAddress == ourMAC && parsed.ethernetSource == ourMAC)
        #expect(!parsed.flags.contains(.solicited) && parsed.flags.contains(.override) && !parsed.flags.contains(.router))
    }

    @Test func advertisementParserChecks() {
        var frame = ICMPv6Frame()
        frame.type = 136
        frame.destination = ip("ff02::1")
        frame.options = [2, 1] + ourMAC.bytes
        frame.flags = 0x60
        #expect(NDPCodec.parseAdvertisement(frame.bytes).failure == .solicitedFlagOnMulticast)
        frame.flags = 0x20
        #expect(NDPCodec.parseAdvertisement(frame.bytes).success?.targetLinkLayerAddress == ourMAC)
        frame.hopLimit = 1
        #expect(NDPCodec.parseAdvertisement(frame.bytes).failure == .hopLimitNot255)
        frame.hopLimit = 255
        frame.options = [2, 2] + ourMAC.bytes + [0, 0, 0, 0, 0, 0, 0, 0]
        #expect(NDPCodec.parseAdvertisement(frame.bytes).failure == .badLinkLayerAddressOption)
        #expect(NDPCodec.parseAdvertisement(ICMPv6Frame().bytes).failure == .notNeighborAdvertisement)
    }
}
