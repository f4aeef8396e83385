import VIPModel

/// The forwarding of one service port in one family: the VIPs (of that family) whose `VIP . protocol . port`
/// keys lead to this rule's backends. Only rules with at least one backend exist: a port without one stays
/// out of the maps and is rejected.
public struct ServicePortRule: Sendable, Hashable {
    public var service: ObjectKey
    public var family: IPFamily
    public var `protocol`: ServicePort.PortProtocol
    public var port: Int
    /// Sorted. Usually one: a service has at most one VIP per family.
    public var vips: [IPAddress]
    /// Sorted and distinct, never empty. Slot i of the backends map holds backends[i].
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

    /// Identity of the rule within a state: one per service, family, protocol and port.
    var id: RuleID { RuleID(service: service, family: family, protocol: `protocol`, port: port) }

    /// The map key of one of its VIPs.
    func element(_ vip: IPAddress) -> ServiceAddress {
        ServiceAddress(vip: vip, protocol: `protocol`, port: port)
    }
}

struct RuleID: Hashable, Comparable {
    var service: ObjectKey
    var family: IPFamily
    var `protocol`: ServicePort.PortProtocol
    var port: Int

    static func < (lhs: RuleID, rhs: RuleID) -> Bool {
        (lhs.service, lhs.family, lhs.protocol.rawValue, lhs.port) < (rhs.service, rhs.family, rhs.protocol.rawValue, rhs.port)
    }
}

/// `VIP . protocol . port`: the key every map of the table looks traffic up by.
struct ServiceAddress: Hashable, Comparable {
    var vip: IPAddress
    var `protocol`: ServicePort.PortProtocol
    var port: Int

    static func < (lhs: ServiceAddress, rhs: ServiceAddress) -> Bool {
        (lhs.vip, lhs.protocol.rawValue, lhs.port) < (rhs.vip, rhs.protocol.rawValue, rhs.port)
    }
}
