import VIPModel

/// Where each record lives. One prefix per kind of record, so a backend can list or watch one cheaply:
///
///     namespaces/NAME                 the applied Namespace document
///     ipaddresspools/NS/NAME          the applied IPAddressPool document
///     l2advertisements/NS/NAME        the applied L2Advertisement document
///     services/NS/NAME                the applied Service document
///     endpointslices/NS/NAME          the applied EndpointSlice document (a service's backends)
///     endpoints/NS/NAME               the applied v1 Endpoints document (used when a service has no slices)
///     assignments/NS/NAME             the controller's answer: the service's addresses
///     events/NS/NAME                  the service's recent events
///     leases/controller               the controller leader lease (leases/controller@CLASS per --lb-class)
///     leases/nodes/NODE               a speaker's node lease: liveness, labels, interfaces
///     claims/ADDRESS                  which node announces an address, valid while that node's lease is live
public enum Keyspace {
    public static let controllerLease = "leases/controller"

    /// Controllers of different `loadBalancerClass`es lead independently.
    public static func controllerLease(for loadBalancerClass: String?) -> String {
        guard let loadBalancerClass else { return controllerLease }
        return controllerLease + "@" + loadBalancerClass.replacingOccurrences(of: "/", with: "_")
    }
    public static let assignmentsPrefix = "assignments/"
    public static let nodeLeasesPrefix = "leases/nodes/"
    public static let claimsPrefix = "claims/"

    public static func nodeLease(_ node: String) -> String { nodeLeasesPrefix + node }
    public static let eventsPrefix = "events/"

    public static func prefix(of kind: Kind) -> String {
        switch kind {
        case .namespace: "namespaces/"
        case .ipAddressPool: "ipaddresspools/"
        case .l2Advertisement: "l2advertisements/"
        case .service: "services/"
        case .endpointSlice: "endpointslices/"
        case .endpoints: "endpoints/"
        }
    }

    public static func key(of object: ObjectKey) -> String {
        object.kind.isNamespaced ? "\(prefix(of: object.kind))\(object.namespace)/\(object.name)"
                                 : "\(prefix(of: object.kind))\(object.name)"
    }

    public static func assignment(of service: ObjectKey) -> String {
        "\(assignmentsPrefix)\(service.namespace)/\(service.name)"
    }

    public static func events(of service: ObjectKey) -> String {
        "\(eventsPrefix)\(service.namespace)/\(service.name)"
    }

    /// The service a per-service key (`assignments/NS/NAME`, `events/NS/NAME`) belongs to.
    public static func service(fromKey key: String, prefix: String) -> ObjectKey? {
        guard key.hasPrefix(prefix) else { return nil }
        let parts = key.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return ObjectKey(.service, namespace: String(parts[0]), name: String(parts[1]))
    }
}
