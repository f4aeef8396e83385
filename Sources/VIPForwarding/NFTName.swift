import VIPModel

/// Names of MetalVIP's nftables objects: fixed, except one balancer chain (and its maps) per backend count.
enum NFTName {
    static let table = "metalvip"

    /// The chain that picks one of `count` backends: shared by every service port with that many.
    static func balancer(_ count: Int) -> String { "lb\(count)" }

    /// The map of backends for the keys balanced by `lbN`, per family.
    static func backends(_ count: Int, _ family: IPFamily) -> String { "lb\(count)-backends\(Self.family(family))" }

    static func family(_ family: IPFamily) -> String { family == .ipv4 ? "4" : "6" }
}
