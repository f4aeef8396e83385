/// Exact count of addresses, up to and including 2^128 (the whole IPv6 space), so huge pools never overflow or go negative.
///
/// Stored as `high * 2^128 + low`: one extra limb is enough for 2^128 itself and for sums of several
/// whole-space pools, while keeping the common case a single `UInt128`.
public struct AddressCount: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    private var high: UInt64
    private var low: UInt128

    public static let zero = AddressCount(0 as UInt128)
    /// 2^128: every IPv6 address, the largest count a single range can have.
    public static let allIPv6 = AddressCount(high: 1, low: 0)

    public init(_ value: UInt128) {
        self.init(high: 0, low: value)
    }

    public init(integerLiteral value: UInt64) {
        self.init(high: 0, low: UInt128(value))
    }

    private init(high: UInt64, low: UInt128) {
        self.high = high
        self.low = low
    }

    /// The count as a `UInt128`, or nil when it is 2^128 or more.
    public var exactValue: UInt128? {
        high == 0 ? low : nil
    }

    public var doubleValue: Double {
        Double(high) * 0x1p128 + Double(low)
    }

    public static func < (a: AddressCount, b: AddressCount) -> Bool {
        (a.high, a.low) < (b.high, b.low)
    }

    /// Saturates at the (unreachable in practice) maximum instead of trapping.
    public static func + (a: AddressCount, b: AddressCount) -> AddressCount {
        let (low, carry) = a.low.addingReportingOverflow(b.low)
        let (high1, o1) = a.high.addingReportingOverflow(b.high)
        let (high, o2) = high1.addingReportingOverflow(carry ? 1 : 0)
        if o1 || o2 { return AddressCount(high: .max, low: .max) }
        return AddressCount(high: high, low: low)
    }

    /// Saturates at zero: "available" must never go negative, even when usage is computed from stale totals.
    public static func - (a: AddressCount, b: AddressCount) -> AddressCount {
        guard a > b else { return .zero }
        let (low, borrow) = a.low.subtractingReportingOverflow(b.low)
        return AddressCount(high: a.high - b.high - (borrow ? 1 : 0), low: low)
    }

    public static func += (a: inout AddressCount, b: AddressCount) { a = a + b }
    public static func -= (a: inout AddressCount, b: AddressCount) { a = a - b }

    /// Exact decimal, e.g. "340282366920938463463374607431768211456" for 2^128.
    public var description: String {
        if high == 0 { return String(low) }
        // Long division of the three 64-bit limbs by 10^19; each step's dividend fits in a UInt128.
        let chunk: UInt128 = 10_000_000_000_000_000_000
        var limbs: [UInt64] = [high, UInt64(truncatingIfNeeded: low >> 64), UInt64(truncatingIfNeeded: low)]
        var parts: [UInt64] = []
        while limbs.contains(where: { $0 != 0 }) {
            var remainder: UInt128 = 0
            for i in limbs.indices {
                let dividend = remainder << 64 | UInt128(limbs[i])
                limbs[i] = UInt64(dividend / chunk)
                remainder = dividend % chunk
            }
            parts.append(UInt64(remainder))
        }
        var text = String(parts.removeLast())
        for part in parts.reversed() {
            let digits = String(part)
            text += String(repeating: "0", count: 19 - digits.count) + digits
        }
        return text
    }
}
