import VIPModel

/// The forwarding of one service port in one family: the VIPs (of that family) whose
/// `address . protocol . port` map elements jump to this rule's chain, and the backends that chain spreads over.
/// Only rules with at least one backend exist: a port without one stays out of the map and is rejected.
public struct ServicePortRule: Sendable, Hashable {
    public var service: ObjectKey
    public var family: IPFamily
    public var `protocol`: ServicePort.PortProtocol
    public var port: Int
    /// Sorted. Usually one: a service has at most one VIP per family.
    public var vips: [IPAddress]
    /// Sorted and distinct, never empty.
    public var backends: [Backend]
    /// `externalTrafficPolicy: Cluster`: replies must come back through this node.
    public var masquerade: Bool

    public init(service: ObjectKey, family: IPFamily, protocol: ServicePort.PortProtocol, port: Int,
                vips: [IPAddress], backends: [Backend], masquerade: Bool) {
        self.service = service
        self.family = family
        self.protocol = `protocol`
        self.port = port
        self.vips = vips
        self.backends = backends
        self.masquerade = masquerade
    }

    /// The chain this rule owns: stable for the service port, valid in nft, short.
    public var chain: String {
        NFTName.chain(service: service, family: family, protocol: `protocol`, port: port)
    }

    /// The map key of one of its VIPs.
    func element(_ vip: IPAddress) -> ServiceAddress {
        ServiceAddress(vip: vip, protocol: `protocol`, port: port)
    }
}

/// `VIP . protocol . port`: the key the dstnat verdict map and the counter map look traffic up by.
struct ServiceAddress: Hashable, Comparable {
    var vip: IPAddress
    var `protocol`: ServicePort.PortProtocol
    var port: Int

    static func < (lhs: ServiceAddress, rhs: ServiceAddress) -> Bool {
        (lhs.vip, lhs.protocol.rawValue, lhs.port) < (rhs.vip, rhs.protocol.rawValue, rhs.port)
    }
}
