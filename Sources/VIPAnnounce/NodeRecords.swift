import VIPLease
import VIPModel

/// One interface of a speaker, as it reports it in its node lease.
public struct NodeInterface: Sendable, Hashable, Codable {
    public var name: String
    public var up: Bool
    public var mac: MACAddress?

    public init(name: String, up: Bool, mac: MACAddress?) {
        self.name = name
        self.up = up
        self.mac = mac
    }
}

/// A speaker's node lease: liveness plus what decides its eligibility (labels, interfaces and their state).
/// One record per node, renewed every period: renewal cost grows with nodes, never with VIPs.
public struct NodeLease: Sendable, Hashable, Codable {
    public var lease: LeaseRecord
    public var labels: [String: String]
    public var interfaces: [NodeInterface]
    /// `externalTrafficPolicy: Local` services whose endpoints on this node all fail their health checks: the
    /// node must not announce them. Absent when empty, so the record (written 20 times a second) stays small.
    public var unservable: [ObjectKey]?

    public init(lease: LeaseRecord, labels: [String: String], interfaces: [NodeInterface], unservable: [ObjectKey] = []) {
        self.lease = lease
        self.labels = labels
        self.interfaces = interfaces
        self.unservable = unservable.isEmpty ? nil : unservable.sorted()
    }

    public var node: String { lease.holder }
    public var upInterfaces: [String] { interfaces.filter(\.up).map(\.name) }
}

/// A node's claim on one VIP. Valid only while the node's lease is live, so when a node dies all its
/// claims lapse together with no write per VIP.
public struct Claim: Sendable, Hashable, Codable {
    public var node: String
    /// The interfaces it answers on, for ServiceL2Status.
    public var interfaces: [String]
    /// The group's key address: every address of a group is claimed together, by one node.
    public var group: IPAddress
    /// Wall time of the claim, for people.
    public var since: String

    public init(node: String, interfaces: [String], group: IPAddress, since: String) {
        self.node = node
        self.interfaces = interfaces
        self.group = group
        self.since = since
    }
}

/// What a speaker knows about another node right now.
public struct NodeStatus: Sendable, Hashable {
    public var name: String
    public var labels: [String: String]
    public var upInterfaces: Set<String>
    /// Local-policy services this node cannot serve now (see `NodeLease.unservable`).
    public var unservable: Set<ObjectKey>

    public init(name: String, labels: [String: String], upInterfaces: Set<String>, unservable: Set<ObjectKey> = []) {
        self.name = name
        self.labels = labels
        self.upInterfaces = upInterfaces
        self.unservable = unservable
    }
}
