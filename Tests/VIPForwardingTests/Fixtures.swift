import VIPForwarding
import VIPModel

/// Small builders so each test states only what it is about.
enum Fixture {
    static func ip(_ text: String) -> IPAddress { IPAddress(text)! }

    static func key(_ name: String, namespace: String = "default") -> ObjectKey {
        ObjectKey(.service, namespace: namespace, name: name)
    }

    static func service(_ name: String, ports: [ServicePort] = [ServicePort(port: 80)],
                        policy: TrafficPolicy = .cluster, type: ServiceType = .loadBalancer) -> Service {
        Service(meta: ObjectMeta(name: name), type: type, ports: ports, externalTrafficPolicy: policy)
    }

    static func endpoint(_ address: String, node: String? = nil, ready: Bool = true, serving: Bool? = nil,
                         terminating: Bool = false) -> EndpointSlice.Endpoint {
        EndpointSlice.Endpoint(address: ip(address), ready: ready, serving: serving, terminating: terminating, nodeName: node)
    }

    static func slice(_ service: String, _ endpoints: [EndpointSlice.Endpoint],
                      ports: [EndpointSlice.Port] = [EndpointSlice.Port(port: 8080)], name: String? = nil) -> EndpointSlice {
        let family = endpoints.first?.address.family ?? .ipv4
        return EndpointSlice(meta: ObjectMeta(name: name ?? "\(service)-\(family.rawValue.lowercased())"), addressType: family,
                             serviceName: service, endpoints: endpoints, ports: ports)
    }

    /// One node's plan with the usual defaults.
    static func plan(_ services: [Service], vips: [String: [String]], slices: [EndpointSlice], node: String = "node-a",
                     unhealthy: [ObjectKey: Set<IPAddress>] = [:]) -> ForwardingState {
        var assignments: [ObjectKey: [IPAddress]] = [:]
        for (name, addresses) in vips { assignments[key(name)] = addresses.map(ip) }
        var backends: [ObjectKey: [EndpointSlice]] = [:]
        for slice in slices { backends[slice.service, default: []].append(slice) }
        return ForwardingPlanner.plan(services: services, assignments: assignments, backends: backends, node: node,
                                      unhealthy: unhealthy)
    }

    /// The single rule of a service port in a family.
    static func rule(_ state: ForwardingState, _ service: String, family: IPFamily = .ipv4, port: Int = 80) -> ServicePortRule? {
        state.rules.first { $0.service == key(service) && $0.family == family && $0.port == port }
    }
}
