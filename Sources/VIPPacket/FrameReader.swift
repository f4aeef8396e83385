import VIPModel

/// Bounds-checked big-endian reads over a received frame. Every read checks the whole field against
/// `count` first and throws `.truncated` instead of touching memory outside the buffer, so no wire
/// input can trap; typed throws keep the error path allocation-free.
struct FrameReader {
    let bytes: UnsafeRawBufferPointer

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var count: Int { bytes.count }

    /// Throws unless `offset..<offset+length` lies inside the buffer (no overflow for any Int input).
    @inline(__always)
    func require(_ offset: Int, _ length: Int) throws(DropReason) {
        guard offset >= 0, length >= 0, offset <= bytes.count, length <= bytes.count - offset else {
            throw .truncated
        }
    }

    func u8(_ offset: Int) throws(DropReason) -> UInt8 {
        try require(offset, 1)
        return bytes[offset]
    }

    func u16(_ offset: Int) throws(DropReason) -> UInt16 {
        try require(offset, 2)
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    func u32(_ offset: Int) throws(DropReason) -> UInt32 {
        try require(offset, 4)
        var value: UInt32 = 0
        for i in 0..<4 { value = value << 8 | UInt32(bytes[offset + i]) }
        return value
    }

    func u64(_ offset: Int) throws(DropReason) -> UInt64 {
        try require(offset, 8)
        var value: UInt64 = 0
        for i in 0..<8 { value = value << 8 | UInt64(bytes[offset + i]) }
        return value
    }

    func mac(_ offset: Int) throws(DropReason) -> MACAddress {
        try require(offset, 6)
        var value: UInt64 = 0
        for i in 0..<6 { value = value << 8 | UInt64(bytes[offset + i]) }
        return MACAddress(value: value)
    }

    func ipv4(_ offset: Int) throws(DropReason) -> IPAddress {
        IPAddress(family: .ipv4, value: UInt128(try u32(offset)))
    }

    func ipv6(_ offset: Int) throws(DropReason) -> IPAddress {
        let high = try u64(offset), low = try u64(offset + 8)
        return IPAddress(family: .ipv6, value: UInt128(high) << 64 | UInt128(low))
    }

    /// A sub-range as its own buffer (for checksumming), after the same bounds check.
    func slice(_ offset: Int, _ length: Int) throws(DropReason) -> UnsafeRawBufferPointer {
        try require(offset, length)
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
    }
}
