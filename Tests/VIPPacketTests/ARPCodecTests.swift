import Testing
import VIPModel
import VIPPacket

@Suite struct ARPCodecTests {
    let vip = ip("192.0.2.10")
    let peerIP = ip("192.0.2.1")

    /// A request as a byte string written out by hand, field by field.
    var handBuiltRequest: [UInt8] {
        hex("ff ff ff ff ff ff  02 00 5e 10 00 02  08 06")  // Ethernet: broadcast, from peer, ARP
            + hex("00 01  08 00  06  04  00 01")  // Ethernet/IPv4, op request
            + hex("02 00 5e 10 00 02  c0 00 02 01")  // sha, spa 192.0.2.1
            + hex("00 00 00 00 00 00  c0 00 02 0a")  // tha zero, tpa 192.0.2.10
    }

    @Test func requestBuilderMatchesHandBuiltFrame() {
        #expect(ARPCodec.request(for: vip, from: peerMAC, ip: peerIP) == handBuiltRequest)
    }

    @Test func requestParses() throws {
        let request = try ARPCodec.parseRequest(handBuiltRequest).get()
        #expect(request.ethernetSource == peerMAC)
        #expect(request.ethernetDestination == .broadcast)
        #expect(request.senderMAC == peerMAC)
        #expect(request.senderIP == peerIP)
        #expect(request.targetIP == vip)
        #expect(!request.isProbe)
        #expect(!request.isAnnouncement)
    }

    @Test func replyIsExact() throws {
        let request = try ARPCodec.parseRequest(handBuiltRequest).get()
        let expected =
            hex("02 00 5e 10 00 02  02 00 5e 10 00 01  08 06")  // to the asker, from us
            + hex("00 01  08 00  06  04  00 02")  // op reply
            + hex("02 00 5e 10 00 01  c0 00 02 0a")  // sha = us, spa = the VIP
            + hex("02 00 5e 10 00 02  c0 00 02 01")  // tha/tpa = the asker
        let reply = ARPCodec.reply(to: request, from: ourMAC)
        #expect(reply == expected)
        #expect(reply.count == ARPCodec.frameLength)

        let parsed = try ARPCodec.parseReply(reply).get()
        #expect(parsed == ARPReply(
            ethernetSource: ourMAC, ethernetDestination: peerMAC, senderMAC: ourMAC,
            senderIP: vip, targetMAC: peerMAC, targetIP: peerIP))
        #expect(!parsed.isGratuitous)
    }

    /// RFC 826 sends the reply to the sender hardware address, even if the frame came from elsewhere
    /// (a bridge or proxy rewriting the Ethernet source).
    @Test func replyGoesToSenderHardwareAddress() throws {
        var frame = handBuiltRequest
        frame.replaceSubrange(6..<12, with: otherMAC.bytes)
        let request = try ARPCodec.parseRequest(frame).get()
        #expect(request.ethernetSource == otherMAC)
        let reply = ARPCodec.reply(to: request, from: ourMAC)
        #expect(Array(reply[0..<6]) == peerMAC.bytes)
        #expect(Array(reply[32..<38]) == peerMAC.bytes)
    }

    @Test func probeIsParsedAndAnsweredUnicastWithZeroTargetIP() throws {
        let probe = ARPCodec.probe(for: vip, from: peerMAC)
        #expect(probe == ARPCodec.request(for: vip, from: peerMAC, ip: ip("0.0.0.0")))
        let request = try ARPCodec.parseRequest(probe).get()
        #expect(request.isProbe)
        #expect(!request.isAnnouncement)
        #expect(request.senderIP == ip("0.0.0.0"))
        let reply = ARPCodec.reply(to: request, from: ourMAC)
        #expect(Array(reply[0..<6]) == peerMAC.bytes)
        #expect(Array(reply[38..<42]) == [0, 0, 0, 0])
        let parsed = try ARPCodec.parseReply(reply).get()
        #expect(parsed.senderIP == vip && parsed.targetIP == ip("0.0.0.0"))
    }

    @Test func gratuitousRequestForm() throws {
        let frame = ARPCodec.gratuitous(vip, from: ourMAC, operation: .request)
        let expected =
            hex("ff ff ff ff ff ff  02 00 5e 10 00 01  08 06  00 01 08 00 06 04 00 01")
            + hex("02 00 5e 10 00 01  c0 00 02 0a  00 00 00 00 00 00  c0 00 02 0a")
        #expect(frame == expected)
        let parsed = try ARPCodec.parseRequest(frame).get()
        #expect(parsed.isAnnouncement && !parsed.isProbe)
        #expect(ARPCodec.parseReply(frame).failure == .notReply)
    }

    @Test func gratuitousReplyForm() throws {
        let frame = ARPCodec.gratuitous(vip, from: ourMAC, operation: .reply)
        let expected =
            hex("ff ff ff ff ff ff  02 00 5e 10 00 01  08 06  00 01 08 00 06 04 00 02")
            + hex("02 00 5e 10 00 01  c0 00 02 0a  ff ff ff ff ff ff  c0 00 02 0a")
        #expect(frame == expected)
        let parsed = try ARPCodec.parseReply(frame).get()
        #expect(parsed.isGratuitous)
        #expect(parsed.senderMAC == ourMAC && parsed.targetMAC == .broadcast && parsed.ethernetDestination == .broadcast)
        #expect(ARPCodec.parseRequest(frame).failure == .notRequest)
    }

    @Test func paddedAndMisalignedFramesParse() throws {
        let padded = handBuiltRequest + [UInt8](repeating: 0, count: 18)  // 60-byte minimum frame
        #expect(try ARPCodec.parseRequest(padded).get().targetIP == vip)
        // The frame starting at an odd address inside a larger buffer.
        let buffer = [0xEE] + padded
        let parsed = buffer.withUnsafeBytes { ARPCodec.parseRequest(UnsafeRawBufferPointer(rebasing: $0[1...])) }
        #expect(parsed.success?.senderIP == peerIP)
    }

    static let drops: [(String, Int, [UInt8], DropReason)] = [
        ("IPv4 ethertype", 12, [0x08, 0x00], .notARP),
        ("IPv6 ethertype", 12, [0x86, 0xDD], .notARP),
        ("hardware type 6", 14, [0x00, 0x06], .badHardwareType),
        ("protocol type IPv6", 16, [0x86, 0xDD], .badProtocolType),
        ("hlen 7", 18, [7], .badAddressLengths),
        ("plen 16", 19, [16], .badAddressLengths),
        ("op reply", 20, [0x00, 0x02], .notRequest),
        ("op 3 (RARP)", 20, [0x00, 0x03], .notRequest),
        ("broadcast sha", 22, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], .invalidSenderMAC),
        ("multicast sha", 22, [0x01, 0x00, 0x5E, 0x00, 0x00, 0x01], .invalidSenderMAC),
        ("zero sha", 22, [0, 0, 0, 0, 0, 0], .invalidSenderMAC),
        ("multicast spa", 28, [224, 0, 0, 251], .invalidSenderIP),
        ("broadcast spa", 28, [255, 255, 255, 255], .invalidSenderIP),
        ("multicast tpa", 38, [239, 1, 1, 1], .targetIsMulticast),
        ("multicast Ethernet source", 6, [0x01, 0x00, 0x5E, 0x00, 0x00, 0x01], .invalidEthernetSource),
        ("zero Ethernet source", 6, [0, 0, 0, 0, 0, 0], .invalidEthernetSource),
    ]

    @Test(arguments: drops)
    func dropsBadField(name: String, offset: Int, bytes: [UInt8], reason: DropReason) {
        var frame = handBuiltRequest
        frame.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
        #expect(ARPCodec.parseRequest(frame).failure == reason, "\(name)")
    }

    @Test(arguments: [0x8100, 0x88A8, 0x9100] as [UInt16])
    func dropsVLANTagged(tpid: UInt16) {
        let frame = Array(handBuiltRequest[..<12]) + [UInt8(tpid >> 8), UInt8(tpid & 0xFF), 0x00, 0x64]
            + Array(handBuiltRequest[12...])
        #expect(ARPCodec.parseRequest(frame).failure == .vlanTagged)
        #expect(ARPCodec.parseReply(frame).failure == .vlanTagged)
    }

    @Test func everyTruncationIsTruncated() {
        let frames = [handBuiltRequest, ARPCodec.gratuitous(vip, from: ourMAC, operation: .reply)]
        for frame in frames {
            for length in 0..<frame.count {
                let prefix = Array(frame[..<length])
                #expect(ARPCodec.parseRequest(prefix).failure == .truncated, "length \(length)")
                #expect(ARPCodec.parseReply(prefix).failure == .truncated, "length \(length)")
            }
        }
        #expect(ARPCodec.parseRequest(UnsafeRawBufferPointer(start: nil, count: 0)).failure == .truncated)
    }

    @Test func replyParserChecksStructureToo() {
        var reply = ARPCodec.gratuitous(vip, from: ourMAC, operation: .reply)
        reply[19] = 6
        #expect(ARPCodec.parseReply(reply).failure == .badAddressLengths)
    }
}
