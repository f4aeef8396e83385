import VIPModel

/// A deterministic corpus of hostile and broken frames, shared by the codec's unit tests and by
/// integration tests that fire it at a live speaker: whatever is in here must never crash anything.
///
/// Built from valid ARP and NDP frames (documentation addresses 192.0.2.0/24 and 2001:db8::/32, locally
/// administered MACs), then: every truncation, VLAN tags, wrong ethertypes, each bad ARP field,
/// each RFC 4861 violation (checksum repaired so the intended check is the one that fails), IPv6
/// extension headers, random option regions, every single-bit flip, random multi-bit flips and
/// random byte strings. A few mutants (e.g. a flipped bit in a sender MAC) are still valid frames.
public enum MalformedFrames {
    /// The valid frames the corpus is derived from, for callers that want a positive control.
    public static var validFrames: [[UInt8]] {
        let mac = MACAddress(value: 0x02_00_5E_10_00_01)
        let peer = MACAddress(value: 0x02_00_5E_10_00_02)
        let v4 = IPAddress(family: .ipv4, value: 0xC000_0201)  // 192.0.2.1
        let vip4 = IPAddress(family: .ipv4, value: 0xC000_020A)  // 192.0.2.10
        let v6 = IPAddress(family: .ipv6, value: 0x2001_0db8 << 96 | 1)  // 2001:db8::1
        let vip6 = IPAddress(family: .ipv6, value: 0x2001_0db8 << 96 | 0x10)  // 2001:db8::10
        let unspecified = IPAddress(family: .ipv6, value: 0)
        let request = ARPRequest(ethernetSource: peer, senderMAC: peer, senderIP: v4, targetIP: vip4)
        return [
            ARPCodec.request(for: vip4, from: peer, ip: v4),
            ARPCodec.probe(for: vip4, from: peer),
            ARPCodec.reply(to: request, from: mac),
            ARPCodec.gratuitous(vip4, from: mac, operation: .request),
            ARPCodec.gratuitous(vip4, from: mac, operation: .reply),
            NDPCodec.solicitation(for: vip6, from: peer, sourceIP: v6),
            NDPCodec.solicitation(for: vip6, from: peer, sourceIP: v6, unicastTo: (mac, vip6)),
            NDPCodec.solicitation(for: vip6, from: peer, sourceIP: unspecified),
            NDPCodec.advertisement(
                answering: NeighborSolicitation(
                    ethernetSource: peer, ethernetDestination: NDPCodec.multicastMAC(for: NDPCodec.solicitedNodeGroup(of: vip6)),
                    sourceIP: v6, destinationIP: NDPCodec.solicitedNodeGroup(of: vip6), targetIP: vip6,
                    sourceLinkLayerAddress: peer),
                from: mac),
            NDPCodec.unsolicitedAdvertisement(vip6, from: mac),
        ]
    }

    /// The whole corpus for `seed`; the same seed always yields the same frames, in the same order.
    /// `randomFrames` random byte strings (length 0...200) are included; with the default the corpus
    /// has about 140k frames (about 40k without them).
    public static func corpus(seed: UInt64, randomFrames: Int = 100_000) -> [[UInt8]] {
        var random = SplitMix64(seed: seed)
        let valid = validFrames
        var frames: [[UInt8]] = []
        frames.reserveCapacity(randomFrames + 60_000)

        for frame in valid {
            // Every truncation, including the empty frame.
            for length in 0..<frame.count { frames.append(Array(frame[..<length])) }
            frames.append(contentsOf: tagged(frame))
            frames.append(contentsOf: wrongEtherTypes(frame))
            // Every single-bit flip.
            for bit in 0..<(frame.count * 8) {
                var flipped = frame
                flipped[bit / 8] ^= 1 << UInt8(bit % 8)
                frames.append(flipped)
            }
            // Random multi-bit flips.
            for _ in 0..<2_000 {
                var flipped = frame
                for _ in 0..<Int.random(in: 2...8, using: &random) {
                    let bit = Int.random(in: 0..<(flipped.count * 8), using: &random)
                    flipped[bit / 8] ^= 1 << UInt8(bit % 8)
                }
                frames.append(flipped)
            }
        }
        for frame in valid where isARP(frame) { frames.append(contentsOf: arpFieldMutants(frame)) }
        for frame in valid where isICMPv6(frame) {
            frames.append(contentsOf: ipv6Mutants(frame))
            frames.append(contentsOf: optionFuzz(frame, count: 2_000, using: &random))
        }
        // Valid Ethernet/ARP or Ethernet/IPv6 prefix with random bytes after it: reaches the deeper checks.
        for index in 0..<4_000 {
            let prefix = valid[index % valid.count].prefix(index % 2 == 0 ? 14 : 22)
            frames.append(Array(prefix) + randomBytes(count: Int.random(in: 0...120, using: &random), using: &random))
        }
        for _ in 0..<max(0, randomFrames) {
            frames.append(randomBytes(count: Int.random(in: 0...200, using: &random), using: &random))
        }
        return frames
    }

    // MARK: - Mutations

    private static let ethernetLength = 14
    private static let icmpOffset = 54

    private static func isARP(_ frame: [UInt8]) -> Bool { frame.count >= 14 && frame[12] == 0x08 && frame[13] == 0x06 }
    private static func isICMPv6(_ frame: [UInt8]) -> Bool { frame.count >= icmpOffset && frame[12] == 0x86 && frame[13] == 0xDD }

    private static func randomBytes(count: Int, using random: inout SplitMix64) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
    }

    private static func withEtherType(_ frame: [UInt8], _ type: UInt16) -> [UInt8] {
        var frame = frame
        frame[12] = UInt8(type >> 8)
        frame[13] = UInt8(type & 0xFF)
        return frame
    }

    /// 802.1Q, 802.1ad, legacy QinQ, and a double (S-tag + C-tag) tag inserted after the MACs.
    private static func tagged(_ frame: [UInt8]) -> [[UInt8]] {
        let macs = frame[..<12], rest = frame[12...]
        let tags: [[UInt8]] = [
            [0x81, 0x00, 0x00, 0x64], [0x88, 0xA8, 0x00, 0x64], [0x91, 0x00, 0x00, 0x64],
            [0x88, 0xA8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0A], [0x81, 0x00, 0x00, 0x00],
        ]
        return tags.map { Array(macs) + $0 + Array(rest) }
    }

    private static func wrongEtherTypes(_ frame: [UInt8]) -> [[UInt8]] {
        let types: [UInt16] = [0x0000, 0x0800, 0x05DC, 0x88CC, 0x8035, 0xFFFF, isARP(frame) ? 0x86DD : 0x0806]
        return types.map { withEtherType(frame, $0) }
    }

    private static func arpFieldMutants(_ frame: [UInt8]) -> [[UInt8]] {
        var mutants: [[UInt8]] = []
        func set(_ offset: Int, _ bytes: [UInt8]) {
            var copy = frame
            copy.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
            mutants.append(copy)
        }
        for htype in [[0x00, 0x00], [0x00, 0x06], [0xFF, 0xFF]] as [[UInt8]] { set(14, htype) }
        for ptype in [[0x86, 0xDD], [0x00, 0x00], [0x08, 0x06]] as [[UInt8]] { set(16, ptype) }
        for hlen in [0, 5, 7, 255] as [UInt8] { set(18, [hlen]) }
        for plen in [0, 3, 16, 255] as [UInt8] { set(19, [plen]) }
        for op in [0, 3, 4, 8, 0xFFFF] as [UInt16] { set(20, [UInt8(op >> 8), UInt8(op & 0xFF)]) }
        set(22, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])  // broadcast sender MAC
        set(22, [0x01, 0x00, 0x5E, 0x00, 0x00, 0x01])  // multicast sender MAC
        set(22, [0, 0, 0, 0, 0, 0])  // zero sender MAC
        set(28, [224, 0, 0, 1])  // multicast sender IP
        set(28, [255, 255, 255, 255])  // broadcast sender IP
        set(38, [239, 1, 2, 3])  // multicast target IP
        set(6, [0x01, 0x00, 0x5E, 0x00, 0x00, 0x01])  // multicast Ethernet source
        mutants.append(frame + [UInt8](repeating: 0, count: 18))  // minimum-size padding (valid)
        return mutants
    }

    /// Recomputes the ICMPv6 checksum over the message as the (possibly mutated) header declares
    /// it, clamped to the frame, so that a mutant fails on the check it targets, not on the checksum.
    static func repairChecksum(_ frame: inout [UInt8]) {
        guard frame.count >= icmpOffset + 4 else { return }
        let declared = Int(frame[18]) << 8 | Int(frame[19])
        let end = min(frame.count, icmpOffset + declared)
        frame[icmpOffset + 2] = 0
        frame[icmpOffset + 3] = 0
        let source = address(frame, at: 22), destination = address(frame, at: 38)
        let checksum = frame.withUnsafeBytes { raw in
            var sum = InternetChecksum.ipv6PseudoHeader(
                source: source, destination: destination, upperLayerLength: UInt32(declared), nextHeader: 58)
            sum.add(UnsafeRawBufferPointer(rebasing: raw[icmpOffset..<end]))
            return sum.checksum
        }
        frame[icmpOffset + 2] = UInt8(checksum >> 8)
        frame[icmpOffset + 3] = UInt8(checksum & 0xFF)
    }

    private static func address(_ frame: [UInt8], at offset: Int) -> IPAddress {
        IPAddress(family: .ipv6, value: frame[offset..<(offset + 16)].reduce(0 as UInt128) { $0 << 8 | UInt128($1) })
    }

    /// Each IPv6 / RFC 4861 violation, applied to a valid NS or NA with the checksum repaired.
    private static func ipv6Mutants(_ frame: [UInt8]) -> [[UInt8]] {
        var mutants: [[UInt8]] = []
        func mutate(repair: Bool = true, _ change: (inout [UInt8]) -> Void) {
            var copy = frame
            change(&copy)
            if repair { repairChecksum(&copy) }
            mutants.append(copy)
        }
        let payload = frame.count - icmpOffset
        func setPayloadLength(_ value: Int, in frame: inout [UInt8]) {
            frame[18] = UInt8(truncatingIfNeeded: value >> 8)
            frame[19] = UInt8(truncatingIfNeeded: value)
        }
        for version: UInt8 in [0x00, 0x40, 0x70, 0xF0] { mutate { $0[14] = version } }
        for hop: UInt8 in [0, 1, 64, 254] { mutate { $0[21] = hop } }
        for next: UInt8 in [0, 6, 17, 43, 44, 50, 51, 59, 60, 135, 255] { mutate { $0[20] = next } }
        // A real hop-by-hop header (8 bytes of PadN) in front of the ICMPv6 message.
        mutate(repair: false) {
            var withExtension = Array($0[..<icmpOffset]) + [58, 0, 1, 4, 0, 0, 0, 0] + Array($0[icmpOffset...])
            withExtension[20] = 0
            setPayloadLength(payload + 8, in: &withExtension)
            $0 = withExtension
        }
        for length in [0, 1, 3, 4, 8, 20, 23, payload + 1, payload + 100, 0xFFFF] {
            mutate { setPayloadLength(length, in: &$0) }
        }
        for code: UInt8 in [1, 255] { mutate { $0[icmpOffset + 1] = code } }
        mutate(repair: false) { $0[icmpOffset + 3] ^= 1 }  // checksum off by one
        mutate(repair: false) { $0[icmpOffset + 2] = 0; $0[icmpOffset + 3] = 0 }  // checksum missing
        mutate { $0[icmpOffset + 4] |= 0x40 }  // Solicited flag (on the multicast NA) / reserved bit (NS)
        mutate { $0[icmpOffset + 8] = 0xFF }  // multicast target
        mutate { $0[22] = 0xFF }  // multicast source
        mutate { $0[6] = 0x01 }  // multicast Ethernet source
        if payload > 24 {
            mutate { $0[icmpOffset + 25] = 0 }  // zero-length option
            mutate { $0[icmpOffset + 25] = 2 }  // option runs past the end
            mutate { $0[icmpOffset + 25] = 0xFF }
            mutate { $0[icmpOffset + 26] = 0x01 }  // group link-layer address
            mutate {  // link-layer option of 16 bytes
                $0[icmpOffset + 25] = 2
                $0 += [UInt8](repeating: 0, count: 8)
                setPayloadLength(payload + 8, in: &$0)
            }
            mutate {  // a stray byte after the options
                $0.append(0)
                setPayloadLength(payload + 1, in: &$0)
            }
            mutate { for i in 22..<38 { $0[i] = 0 } }  // :: source with an option
        } else {
            mutate { for i in 38..<54 { $0[i] = 0 }; $0[38] = 0x20; $0[39] = 0x01; $0[53] = 1 }  // :: to unicast
        }
        mutate { $0 += [UInt8](repeating: 0xA5, count: 32) }  // trailing bytes beyond payload (valid)
        return mutants
    }

    /// Random option regions (random type/length/value bytes) with correct checksums, so the option
    /// walker sees far more shapes than bit flips alone (which almost always fail the checksum).
    private static func optionFuzz(_ frame: [UInt8], count: Int, using random: inout SplitMix64) -> [[UInt8]] {
        let fixedEnd = icmpOffset + 24
        return (0..<count).map { _ in
            var copy = Array(frame[..<fixedEnd])
            let optionBytes = Int.random(in: 0...64, using: &random)
            for _ in 0..<optionBytes {
                // Bias towards small numbers so type/length bytes are often plausible.
                let small = Bool.random(using: &random)
                copy.append(UInt8.random(in: 0...(small ? 3 : 255), using: &random))
            }
            let payload = copy.count - icmpOffset
            copy[18] = UInt8(truncatingIfNeeded: payload >> 8)
            copy[19] = UInt8(truncatingIfNeeded: payload)
            repairChecksum(&copy)
            return copy
        }
    }
}
