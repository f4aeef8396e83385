/// Why a piece of text is not an address, CIDR block or range. The description quotes the text and
/// names the exact fault, because it ends up in front of whoever wrote the pool manifest.
public enum AddressParseError: Error, Sendable, Hashable, CustomStringConvertible {
    case invalidAddress(String, Problem)
    case invalidCIDR(String, Problem)
    case invalidRange(String, Problem)

    /// Which side of an "a-b" range a problem is in.
    public enum Bound: String, Sendable, Hashable {
        case start, end
    }

    /// The specific fault, independent of whether the text was an address, a CIDR or a range.
    /// (An `Error` only so parsers can carry it in a `Result`; callers always see `AddressParseError`.)
    public indirect enum Problem: Error, Sendable, Hashable, CustomStringConvertible {
        case empty
        case tooLong(Int)
        case octetCount(Int)
        case emptyOctet
        case octetNotDecimal(String)
        case octetLeadingZero(String)
        case octetTooLarge(String)
        case zoneIdentifier
        case brackets
        case multipleDoubleColons
        case emptyGroup
        case groupTooLong(String)
        case groupNotHexadecimal(String)
        case groupCount(Int)
        case nothingCompressed(Int)
        case misplacedIPv4Part
        case missingPrefixLength
        case prefixNotDecimal(String)
        case prefixOutOfRange(String, maximum: Int)
        case missingBound(Bound)
        case inBound(Bound, Problem)
        case startAfterEnd(IPAddress, IPAddress)
        case mixedFamilies

        public var description: String {
            switch self {
            case .empty: "it is empty"
            case .tooLong(let n): "it is \(n) characters long, longer than any address"
            case .octetCount(let n): "expected 4 dot-separated octets, found \(n)"
            case .emptyOctet: "an octet is empty"
            case .octetNotDecimal(let s): "octet \"\(s)\" is not a decimal number"
            case .octetLeadingZero(let s): "octet \"\(s)\" has a leading zero"
            case .octetTooLarge(let s): "octet \(s) is greater than 255"
            case .zoneIdentifier: "zone identifiers (\"%...\") are not allowed"
            case .brackets: "brackets are not allowed"
            case .multipleDoubleColons: "\"::\" may appear only once"
            case .emptyGroup: "a group is empty (stray ':')"
            case .groupTooLong(let s): "group \"\(s)\" has more than 4 hex digits"
            case .groupNotHexadecimal(let s): "group \"\(s)\" is not hexadecimal"
            case .groupCount(let n): "expected 8 colon-separated groups, found \(n)"
            case .nothingCompressed(let n): "\"::\" must stand for at least one zero group, but \(n) groups are given"
            case .misplacedIPv4Part: "an embedded IPv4 part may only be the last 32 bits"
            case .missingPrefixLength: "the prefix length after '/' is missing"
            case .prefixNotDecimal(let s): "prefix length \"\(s)\" is not a decimal number"
            case .prefixOutOfRange(let s, let maximum): "prefix length \(s) is out of range 0-\(maximum)"
            case .missingBound(let bound): "the \(bound.rawValue) address is missing"
            case .inBound(let bound, let problem): "\(bound.rawValue) address: \(problem)"
            case .startAfterEnd(let a, let b): "start \(a) is after end \(b)"
            case .mixedFamilies: "start and end are of different families"
            }
        }
    }

    /// The offending text, as given.
    public var text: String {
        switch self {
        case .invalidAddress(let t, _), .invalidCIDR(let t, _), .invalidRange(let t, _): t
        }
    }

    public var problem: Problem {
        switch self {
        case .invalidAddress(_, let p), .invalidCIDR(_, let p), .invalidRange(_, let p): p
        }
    }

    public var description: String {
        switch self {
        case .invalidAddress(let t, let p): "invalid address \"\(t)\": \(p)"
        case .invalidCIDR(let t, let p): "invalid CIDR \"\(t)\": \(p)"
        case .invalidRange(let t, let p): "invalid range \"\(t)\": \(p)"
        }
    }
}
