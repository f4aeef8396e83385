import VIPModel

/// Names of MetalVIP's nftables objects. A counter name must be a valid nft identifier and stable for its
/// service; a readable prefix helps a person reading `nft list ruleset`, and a hash of the full identity keeps
/// long or similar names distinct.
enum NFTName {
    static let table = "metalvip"
    /// The readable part is cut to this many characters; the hash keeps names unique.
    static let readableLength = 40

    static func counter(service: ObjectKey) -> String {
        "svc-\(readable(service))-\(hash("\(service.namespace)/\(service.name)"))"
    }

    /// The chain that picks one of `count` backends: shared by every service port with that many.
    static func balancer(_ count: Int) -> String { "lb\(count)" }

    /// The map of backends for the keys balanced by `lbN`, per family.
    static func backends(_ count: Int, _ family: IPFamily) -> String { "lb\(count)-backends\(Self.family(family))" }

    static func family(_ family: IPFamily) -> String { family == .ipv4 ? "4" : "6" }

    /// `namespace-name`, kept to lowercase letters, digits, `-` and `.`, and cut short.
    private static func readable(_ service: ObjectKey) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(readableLength)
        for byte in "\(service.namespace)-\(service.name)".utf8 {
            guard bytes.count < readableLength else { break }
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."):
                bytes.append(byte)
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                bytes.append(byte + 32)
            default:
                bytes.append(UInt8(ascii: "-"))
            }
        }
        return String(decoding: bytes, as: UTF8.self)
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
