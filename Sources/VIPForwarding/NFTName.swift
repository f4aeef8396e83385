import VIPModel

/// Names of MetalVIP's nftables objects. A chain or counter name must be a valid nft identifier and is
/// stable for its service port; a readable prefix helps a person reading `nft list ruleset`, and a hash of the
/// full identity keeps long or similar names distinct.
enum NFTName {
    static let table = "metalvip"
    /// The readable part is cut to this many characters; the hash keeps names unique.
    static let readableLength = 40

    static func chain(service: ObjectKey, family: IPFamily, protocol: ServicePort.PortProtocol, port: Int) -> String {
        let proto = `protocol`.rawValue.lowercased()
        let digit = family == .ipv4 ? "4" : "6"
        let identity = "\(service.namespace)/\(service.name)/\(family.rawValue)/\(`protocol`.rawValue)/\(port)"
        return "svc\(digit)-\(readable(service))-\(proto)\(port)-\(hash(identity))"
    }

    static func counter(service: ObjectKey) -> String {
        "svc-\(readable(service))-\(hash("\(service.namespace)/\(service.name)"))"
    }

    static func family(_ family: IPFamily) -> String { family == .ipv4 ? "4" : "6" }

    /// `namespace-name`, kept to letters, digits, `-` and `.`, and cut short.
    private static func readable(_ service: ObjectKey) -> String {
        let text = "\(service.namespace)-\(service.name)".lowercased().map { character -> Character in
            character.isASCII && (character.isLetter || character.isNumber || character == "-" || character == ".") ? character : "-"
        }
        return String(text.prefix(readableLength))
    }

    /// FNV-1a, 32 bits, as 8 hex digits: enough to separate names that share a readable prefix.
    static func hash(_ text: String) -> String {
        var value: UInt32 = 0x811c_9dc5
        for byte in text.utf8 {
            value ^= UInt32(byte)
            value = value &* 0x0100_0193
        }
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }
}
