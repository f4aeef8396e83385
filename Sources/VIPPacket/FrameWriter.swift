import VIPModel

/// Appends big-endian fields to a frame being built. Builders know their exact size up front, so
/// one reservation covers the whole frame.
struct FrameWriter {
    private(set) var bytes: [UInt8]

    init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    mutating func u8(_ value: UInt8) { bytes.append(value) }

    mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    mutating func u32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
        }
    }

    mutating func zeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: count)) }

    mutating func mac(_ address: MACAddress) {
        for shift in stride(from: 40, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: address.value >> UInt64(shift)))
        }
    }

    /// - Precondition: `address` is IPv4 (a caller bug, never wire data).
    mutating func ipv4(_ address: IPAddress) {
        precondition(address.family == .ipv4, "expected an IPv4 address, got \(address)")
        u32(UInt32(truncatingIfNeeded: address.value))
    }

    /// - Precondition: `address` is IPv6 (a caller bug, never wire data).
    mutating func ipv6(_ address: IPAddress) {
        precondition(address.family == .ipv6, "expected an IPv6 address, got \(address)")
        for shift in stride(from: 120, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: address.value >> UInt128(shift)))
        }
    }

    /// Overwrites two bytes already written (checksum fields are filled in last).
    mutating func set16(_ value: UInt16, at offset: Int) {
        bytes[offset] = UInt8(truncatingIfNeeded: value >> 8)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value)
    }
}
