/// One IPv4 or IPv6 address as a plain integer, so range and ordinal math is just arithmetic.
///
/// Ordered by family, then value. Codable as its text form, so stored records stay human-readable.
/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) stays IPv6: pools are configured per family and
/// silently turning it into IPv4 would move it between families.
public struct IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible, LosslessStringConvertible, Codable {
    public let family: IPFamily
    /// IPv4 uses the low 32 bits.
    public let value: UInt128

    /// - Precondition: `value` fits the family (at most 2^32-1 for IPv4).
    public init(family: IPFamily, value: UInt128) {
        precondition(value <= family.maxValue, "IPv4 address value out of range")
        self.family = family
        self.value = value
    }

    /// Parses IPv4 dotted-quad or any RFC 4291 IPv6 text form; nil on anything else. Never traps.
    public init?(_ text: String) {
        guard case .success(let address) = IPAddress.parseText(Substring(text)) else { return nil }
        self = address
    }

    /// Like `init?(_:)`, but says exactly what is wrong.
    public static func parse(_ text: String) throws(AddressParseError) -> IPAddress {
        switch parseText(Substring(text)) {
        case .success(let address): return address
        case .failure(let problem): throw .invalidAddress(text, problem)
        }
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        (a.family, a.value) < (b.family, b.value)
    }

    /// IPv4 dotted quad; IPv6 canonical per RFC 5952 (IPv4-mapped addresses keep a dotted tail, §5).
    public var description: String {
        switch family {
        case .ipv4: return IPAddress.formatIPv4(UInt32(truncatingIfNeeded: value))
        case .ipv6: return IPAddress.formatIPv6(value)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        switch IPAddress.parseText(Substring(text)) {
        case .success(let address): self = address
        case .failure(let problem):
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: AddressParseError.invalidAddress(text, problem).description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

// MARK: - Parsing

extension IPAddress {
    /// Longest valid form is 45 characters ("ffff:...:255.255.255.255"); anything longer is rejected
    /// before any work so hostile input stays cheap.
    private static let maxTextLength = 45

    static func parseText(_ text: Substring) -> Result<IPAddress, AddressParseError.Problem> {
        let bytes = Array(text.utf8)
        if bytes.isEmpty { return .failure(.empty) }
        if bytes.count > maxTextLength { return .failure(.tooLong(text.count)) }
        if bytes.contains(UInt8(ascii: "%")) { return .failure(.zoneIdentifier) }
        if bytes.contains(UInt8(ascii: "[")) || bytes.contains(UInt8(ascii: "]")) { return .failure(.brackets) }
        if bytes.contains(UInt8(ascii: ":")) {
            return parseIPv6(bytes[...]).map { IPAddress(family: .ipv6, value: $0) }
        }
        return parseIPv4(bytes[...]).map { IPAddress(family: .ipv4, value: UInt128($0)) }
    }

    private static func text(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    private static func parseIPv4(_ bytes: ArraySlice<UInt8>) -> Result<UInt32, AddressParseError.Problem> {
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return .failure(.octetCount(parts.count)) }
        var value: UInt32 = 0
        for part in parts {
            if part.isEmpty { return .failure(.emptyOctet) }
            guard part.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                return .failure(.octetNotDecimal(text(part)))
            }
            // Leading zeros are ambiguous (octal in inet_aton), and Go's parser rejects them too.
            if part.count > 1 && part.first == UInt8(ascii: "0") { return .failure(.octetLeadingZero(text(part))) }
            if part.count > 3 { return .failure(.octetTooLarge(text(part))) }
            let octet = part.reduce(0) { $0 * 10 + UInt32($1 - UInt8(ascii: "0")) }
            if octet > 255 { return .failure(.octetTooLarge(String(octet))) }
            value = value << 8 | octet
        }
        return .success(value)
    }

    private static func hexDigit(_ byte: UInt8) -> UInt16? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt16(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt16(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt16(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// Parses the colon-separated groups on one side of "::". `allowsIPv4Tail` is true only for the
    /// side that ends the address.
    private static func parseGroups(
        _ bytes: ArraySlice<UInt8>, allowsIPv4Tail: Bool
    ) -> Result<[UInt16], AddressParseError.Problem> {
        if bytes.isEmpty { return .success([]) }
        let parts = bytes.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        var groups: [UInt16] = []
        for (index, part) in parts.enumerated() {
            if part.isEmpty { return .failure(.emptyGroup) }
            if part.contains(UInt8(ascii: ".")) {
                guard allowsIPv4Tail && index == parts.count - 1 else { return .failure(.misplacedIPv4Part) }
                switch parseIPv4(part) {
                case .failure(let problem): return .failure(problem)
                case .success(let v4):
                    groups.append(UInt16(truncatingIfNeeded: v4 >> 16))
                    groups.append(UInt16(truncatingIfNeeded: v4))
                }
                continue
            }
            let digits = part.map(hexDigit)
            if digits.contains(nil) { return .failure(.groupNotHexadecimal(text(part))) }
            if digits.count > 4 { return .failure(.groupTooLong(text(part))) }
            groups.append(digits.reduce(0) { $0 << 4 | ($1 ?? 0) })
        }
        return .success(groups)
    }

    private static func parseIPv6(_ bytes: ArraySlice<UInt8>) -> Result<UInt128, AddressParseError.Problem> {
        let colon = UInt8(ascii: ":")
        var compression: Int? = nil
        var i = bytes.startIndex
        while i + 1 < bytes.endIndex {
            if bytes[i] == colon && bytes[i + 1] == colon {
                if compression != nil { return .failure(.multipleDoubleColons) }
                compression = i
                i += 2
            } else {
                i += 1
            }
        }
        var groups: [UInt16]
        if let at = compression {
            let head: [UInt16], tail: [UInt16]
            switch parseGroups(bytes[bytes.startIndex..<at], allowsIPv4Tail: false) {
            case .success(let g): head = g
            case .failure(let p): return .failure(p)
            }
            switch parseGroups(bytes[(at + 2)...], allowsIPv4Tail: true) {
            case .success(let g): tail = g
            case .failure(let p): return .failure(p)
            }
            let given = head.count + tail.count
            if given > 7 { return .failure(.nothingCompressed(given)) }
            groups = head + Array(repeating: 0, count: 8 - given) + tail
        } else {
            switch parseGroups(bytes, allowsIPv4Tail: true) {
            case .success(let g): groups = g
            case .failure(let p): return .failure(p)
            }
            if groups.count != 8 { return .failure(.groupCount(groups.count)) }
        }
        return .success(groups.reduce(0 as UInt128) { $0 << 16 | UInt128($1) })
    }
}

// MARK: - Formatting

extension IPAddress {
    static func formatIPv4(_ value: UInt32) -> String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }

    static func formatIPv6(_ value: UInt128) -> String {
        // ::ffff:0:0/96 is written with a dotted tail (RFC 5952 §5), as inet_ntop does.
        if value >> 32 == 0xffff {
            return "::ffff:" + formatIPv4(UInt32(truncatingIfNeeded: value))
        }
        let groups = (0..<8).map { UInt16(truncatingIfNeeded: value >> (16 * (7 - $0))) }
        // Longest run of two or more zero groups; the leftmost wins a tie (RFC 5952 §4.2).
        var bestStart = -1, bestLength = 1
        var runStart = 0
        while runStart < 8 {
            guard groups[runStart] == 0 else { runStart += 1; continue }
            var runEnd = runStart
            while runEnd < 8 && groups[runEnd] == 0 { runEnd += 1 }
            if runEnd - runStart > bestLength { bestStart = runStart; bestLength = runEnd - runStart }
            runStart = runEnd
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}

extension IPAddress {
    /// `192.0.2.3:8080` or `[2001:db8::3]:8080`: an endpoint as URLs, Host headers and kubectl write it.
    public func withPort(_ port: Int) -> String {
        family == .ipv6 ? "[\(self)]:\(port)" : "\(self):\(port)"
    }
}
