/// An inclusive span of addresses of one family: how pools are configured.
/// Codable as its text form (the same forms `parse` accepts).
public struct AddressRange: Hashable, Sendable, CustomStringConvertible, Codable {
    public let first: IPAddress
    /// Same family as `first`, and never below it.
    public let last: IPAddress

    public var family: IPFamily { first.family }

    public init(first: IPAddress, last: IPAddress) throws(AddressParseError) {
        let text = "\(first)-\(last)"
        guard first.family == last.family else { throw .invalidRange(text, .mixedFamilies) }
        guard first.value <= last.value else { throw .invalidRange(text, .startAfterEnd(first, last)) }
        self.first = first
        self.last = last
    }

    /// The block `address/prefixLength`, with host bits masked off as Go's net.ParseCIDR does.
    public init(address: IPAddress, prefixLength: Int) throws(AddressParseError) {
        let width = address.family.bitWidth
        guard (0...width).contains(prefixLength) else {
            throw .invalidCIDR("\(address)/\(prefixLength)", .prefixOutOfRange(String(prefixLength), maximum: width))
        }
        let hostMask: UInt128 = prefixLength == 0 ? address.family.maxValue : (1 << UInt128(width - prefixLength)) - 1
        first = IPAddress(family: address.family, value: address.value & ~hostMask)
        last = IPAddress(family: address.family, value: address.value | hostMask)
    }

    /// Accepts "192.0.2.0/24" (host bits set are masked off, as MetalLB/Go's net.ParseCIDR does),
    /// "192.0.2.10-192.0.2.20" (spaces around '-' allowed, as MetalLB allows), IPv6 forms of both,
    /// and a single address (= /32 or /128).
    public static func parse(_ text: String) throws(AddressParseError) -> AddressRange {
        let trimmed = trimSpaces(Substring(text))
        if let dash = trimmed.firstIndex(of: "-") {
            return try parseRange(text, start: trimSpaces(trimmed[..<dash]), end: trimSpaces(trimmed[trimmed.index(after: dash)...]))
        }
        if let slash = trimmed.firstIndex(of: "/") {
            return try parseCIDR(text, address: trimmed[..<slash], prefix: trimmed[trimmed.index(after: slash)...])
        }
        switch IPAddress.parseText(trimmed) {
        case .success(let address): return AddressRange(uncheckedFirst: address, last: address)
        case .failure(let problem): throw .invalidAddress(text, problem)
        }
    }

    private init(uncheckedFirst first: IPAddress, last: IPAddress) {
        self.first = first
        self.last = last
    }

    private static func trimSpaces(_ text: Substring) -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = text.firstIndex(where: { !isSpace($0) }), let end = text.lastIndex(where: { !isSpace($0) }) else {
            return text[text.endIndex...]
        }
        return text[start...end]
    }

    private static func parseRange(_ text: String, start: Substring, end: Substring) throws(AddressParseError) -> AddressRange {
        func bound(_ part: Substring, _ which: AddressParseError.Bound) throws(AddressParseError) -> IPAddress {
            if part.isEmpty { throw .invalidRange(text, .missingBound(which)) }
            switch IPAddress.parseText(part) {
            case .success(let address): return address
            case .failure(let problem): throw .invalidRange(text, .inBound(which, problem))
            }
        }
        let first = try bound(start, .start)
        let last = try bound(end, .end)
        guard first.family == last.family else { throw .invalidRange(text, .mixedFamilies) }
        guard first.value <= last.value else { throw .invalidRange(text, .startAfterEnd(first, last)) }
        return AddressRange(uncheckedFirst: first, last: last)
    }

    private static func parseCIDR(_ text: String, address: Substring, prefix: Substring) throws(AddressParseError) -> AddressRange {
        let base: IPAddress
        switch IPAddress.parseText(address) {
        case .success(let parsed): base = parsed
        case .failure(let problem): throw .invalidCIDR(text, problem)
        }
        if prefix.isEmpty { throw .invalidCIDR(text, .missingPrefixLength) }
        guard prefix.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw .invalidCIDR(text, .prefixNotDecimal(String(prefix)))
        }
        let width = base.family.bitWidth
        // Saturating parse: a 40-digit prefix must produce an error message, not an overflow trap.
        let length = prefix.utf8.reduce(0) { min($0 * 10 + Int($1 - UInt8(ascii: "0")), 1000) }
        guard length <= width else {
            throw .invalidCIDR(text, .prefixOutOfRange(prefix.count <= 4 ? String(length) : String(prefix), maximum: width))
        }
        do {
            return try AddressRange(address: base, prefixLength: length)
        } catch {
            throw .invalidCIDR(text, error.problem)
        }
    }

    /// Number of addresses; exactly 2^128 for ::/0.
    public var count: AddressCount {
        AddressCount(last.value - first.value) + AddressCount(1)
    }

    public func contains(_ address: IPAddress) -> Bool {
        address.family == family && first.value <= address.value && address.value <= last.value
    }

    public func overlaps(_ other: AddressRange) -> Bool {
        other.family == family && first.value <= other.last.value && other.first.value <= last.value
    }

    /// The prefix length when the range is exactly one CIDR block, else nil.
    public var prefixLength: Int? {
        let span = last.value - first.value
        // span + 1 must be a power of two (wrapping for ::/0) and `first` aligned to it.
        guard span & (span &+ 1) == 0, first.value & span == 0 else { return nil }
        return family.bitWidth - span.nonzeroBitCount
    }

    /// "first-last", or CIDR form when it is exactly a CIDR block, or the single address.
    public var description: String {
        if first == last { return first.description }
        if let prefixLength { return "\(first)/\(prefixLength)" }
        return "\(first)-\(last)"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            self = try AddressRange.parse(text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
