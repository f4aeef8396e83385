import VIPModel

/// The Internet checksum (RFC 1071): a 16-bit ones'-complement sum, accumulated piecewise so the
/// IPv6 pseudo-header (RFC 8200 §8.1) and the message can be summed without copying them together.
///
/// Odd-length pieces are handled: a dangling byte is carried into the next piece as the high half of a word.
public struct InternetChecksum: Sendable, Hashable {
    /// Wide enough that carries never overflow for any buffer that fits in memory; folded on read.
    private var sum: UInt64 = 0
    private var pendingHighByte: UInt8? = nil

    public init() {}

    /// Adds bytes in network order, continuing any odd byte left by the previous call.
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        var index = 0
        if let high = pendingHighByte, count > 0 {
            sum &+= UInt64(high) << 8 | UInt64(bytes[0])
            pendingHighByte = nil
            index = 1
        }
        while index + 1 < count {
            sum &+= UInt64(bytes[index]) << 8 | UInt64(bytes[index + 1])
            index += 2
        }
        if index < count { pendingHighByte = bytes[index] }
    }

    public mutating func add(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { add($0) }
    }

    /// Adds one 16-bit word in network order (as two bytes if an odd byte is pending).
    public mutating func add(_ word: UInt16) {
        guard pendingHighByte == nil else {
            withUnsafeBytes(of: word.bigEndian) { add($0) }
            return
        }
        sum &+= UInt64(word)
    }

    /// Adds a 32-bit value as two words (the pseudo-header length field).
    public mutating func add(_ value: UInt32) {
        add(UInt16(truncatingIfNeeded: value >> 16))
        add(UInt16(truncatingIfNeeded: value))
    }

    /// Adds an address in wire order: 2 words for IPv4, 8 for IPv6.
    public mutating func add(_ address: IPAddress) {
        let words = address.family == .ipv4 ? 2 : 8
        for i in stride(from: words - 1, through: 0, by: -1) {
            add(UInt16(truncatingIfNeeded: address.value >> UInt128(16 * i)))
        }
    }

    /// The folded ones'-complement sum (with an odd trailing byte padded by a zero byte).
    /// A message whose checksum field is correct sums to 0xFFFF.
    public var foldedSum: UInt16 {
        var total = sum
        if let high = pendingHighByte { total &+= UInt64(high) << 8 }
        // Each fold at least halves the excess; four rounds reduce any UInt64 to 16 bits.
        for _ in 0..<4 where total > 0xFFFF { total = (total & 0xFFFF) + (total >> 16) }
        return UInt16(truncatingIfNeeded: total)
    }

    /// The value to store in a checksum field (which was zero while summing).
    public var checksum: UInt16 { ~foldedSum }

    /// True when the summed data, checksum field included, verifies.
    public var isValid: Bool { foldedSum == 0xFFFF }

    /// A checksum pre-loaded with the IPv6 pseudo-header: source, destination, 32-bit upper-layer
    /// length, three zero bytes and the next-header value (RFC 8200 §8.1).
    public static func ipv6PseudoHeader(
        source: IPAddress, destination: IPAddress, upperLayerLength: UInt32, nextHeader: UInt8
    ) -> InternetChecksum {
        var checksum = InternetChecksum()
        checksum.add(source)
        checksum.add(destination)
        checksum.add(upperLayerLength)
        checksum.add(UInt32(nextHeader))
        return checksum
    }

    /// The ICMPv6 checksum (RFC 4443 §2.3) for `message`, whose checksum field must be zero.
    public static func icmpv6(source: IPAddress, destination: IPAddress, message: UnsafeRawBufferPointer) -> UInt16 {
        var checksum = ipv6PseudoHeader(
            source: source, destination: destination,
            upperLayerLength: UInt32(truncatingIfNeeded: message.count), nextHeader: IPv6Header.nextHeaderICMPv6)
        checksum.add(message)
        return checksum.checksum
    }
}
