/// What decides whether two services may share one address (MetalLB rules).
public struct SharingProfile: Sendable, Hashable {
    /// The allow-shared-ip key; "" never shares.
    public var key: String
    public var ports: Set<ServicePortKey>
    /// "" for externalTrafficPolicy Cluster; a canonical selector string for Local, because Local
    /// traffic only works when every sharer selects the same pods.
    public var backendKey: String

    public init(key: String = "", ports: Set<ServicePortKey> = [], backendKey: String = "") {
        self.key = key
        self.ports = ports
        self.backendKey = backendKey
    }

    /// No sharing key: the address belongs to one service alone.
    public static let exclusive = SharingProfile()

    /// True when both keys are equal and non-empty, backendKeys are equal, and no (port, protocol) pair is in both.
    public func isCompatible(with other: SharingProfile) -> Bool {
        conflict(with: other) == nil
    }

    /// The first rule that forbids sharing, or nil when sharing is allowed; it explains refusals to users.
    public func conflict(with other: SharingProfile) -> Conflict? {
        if key.isEmpty || other.key.isEmpty { return .noSharingKey }
        if key != other.key { return .differentSharingKey }
        if backendKey != other.backendKey {
            return backendKey.isEmpty || other.backendKey.isEmpty ? .mixedTrafficPolicies : .differentBackends
        }
        let clashing = ports.intersection(other.ports)
        if !clashing.isEmpty { return .portsInBoth(clashing.sorted()) }
        return nil
    }

    /// Why two profiles cannot share an address.
    public enum Conflict: Sendable, Hashable, CustomStringConvertible {
        case noSharingKey
        case differentSharingKey
        /// Both use externalTrafficPolicy Local but select different pods.
        case differentBackends
        /// One uses externalTrafficPolicy Local, the other Cluster.
        case mixedTrafficPolicies
        /// Sorted (port, protocol) pairs both services expose.
        case portsInBoth([ServicePortKey])

        public var description: String {
            switch self {
            case .noSharingKey: "no sharing key"
            case .differentSharingKey: "different sharing key"
            case .differentBackends: "different pod selector under externalTrafficPolicy Local"
            case .mixedTrafficPolicies: "externalTrafficPolicy Local and Cluster cannot share an address"
            case .portsInBoth(let ports) where ports.count == 1: "port \(ports[0]) is used by both"
            case .portsInBoth(let ports): "ports \(ports.map(\.description).joined(separator: ", ")) are used by both"
            }
        }
    }
}
