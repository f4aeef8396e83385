import VIPModel
import VIPPacket

// Fixtures and an independent reference checksum, so tests never verify the codec with its own code.

let ourMAC = MACAddress("02:00:5e:10:00:01")!
let peerMAC = MACAddress("02:00:5e:10:00:02")!
let otherMAC = MACAddress("02:00:5e:10:00:03")!

func ip(_ text: String) -> IPAddress { IPAddress(text)! }

/// Parses "aa bb cc" / "aabbcc" hex (whitespace ignored) into bytes.
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

func macBytes(_ mac: MACAddress) -> [UInt8] { mac.bytes }

func addressBytes(_ address: IPAddress) -> [UInt8] {
    let count = address.family == .ipv4 ? 4 : 16
    return (0..<count).map { UInt8(truncatingIfNeeded: address.value >> UInt128(8 * (count - 1 - $0))) }
}

/// RFC 1071, written the obvious way: 16-bit big-endian words, odd byte padded, carries folded.
func referenceOnesComplementSum(_ data: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var i = 0
    while i < data.count {
        let high = UInt32(data[i])
        let low = i + 1 < data.count ? UInt32(data[i + 1]) : 0
        sum += high << 8 | low
        sum = (sum & 0xFFFF) + (sum >> 16)
        i += 2
    }
    return UInt16(sum)
}

/// The IPv6 pseudo-header (RFC 8200 §8.1) followed by the ICMPv6 message of an Ethernet frame
/// (message length from the IPv6 payload length).
func pseudoHeaderAndMessage(_ frame: [UInt8]) -> [UInt8] {
    let length = Int(frame[18]) << 8 | Int(frame[19])
    let message = Array(frame[54..<(54 + length)])
    return Array(frame[22..<54]) + [0, 0, UInt8(length >> 8), UInt8(length & 0xFF), 0, 0, 0, 58] + message
}

/// True when the frame's ICMPv6 checksum verifies: the sum over pseudo-header + message is 0xFFFF.
func icmpChecksumVerifies(_ frame: [UInt8]) -> Bool {
    referenceOnesComplementSum(pseudoHeaderAndMessage(frame)) == 0xFFFF
}

/// Rewrites the ICMPv6 checksum of a frame the test has deliberately modified.
func fixChecksum(_ frame: [UInt8]) -> [UInt8] {
    var frame = frame
    frame[56] = 0
    frame[57] = 0
    let checksum = ~referenceOnesComplementSum(pseudoHeaderAndMessage(frame))
    frame[56] = UInt8(checksum >> 8)
    frame[57] = UInt8(checksum & 0xFF)
    return frame
}

func setPayloadLength(_ frame: inout [UInt8], _ length: Int) {
    frame[18] = UInt8(length >> 8)
    frame[19] = UInt8(length & 0xFF)
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }

    var success: Success? {
        if case .success(let value) = self { return value }
        return nil
    }
}
