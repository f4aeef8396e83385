import VIPModel

/// Turns services, their VIPs and endpoints, health and this node's name into the desired ForwardingState.
public enum ForwardingPlanner {
    /// Desired state for `node`: every VIP of every LoadBalancer service with an assignment (every node
    /// programs every VIP it may carry, so a failover needs only the ARP/NDP takeover).
    /// Cluster: all usable endpoints, masqueraded. Local: only endpoints on `node`, client source kept.
    /// `unhealthy` endpoints are left out before the ready/terminating rule is applied.
    /// Two services claiming the same `VIP . protocol . port` (a sharing conflict the allocator should have
    /// refused): the first by key wins, so one bad pair never fails the whole transaction.
    public static func plan(services: [Service], assignments: [ObjectKey: [IPAddress]],
                            backends: [ObjectKey: [EndpointSlice]], node: String,
                            unhealthy: [ObjectKey: Set<IPAddress>],
                            masqueradeMark: UInt32 = ForwardingState.defaultMasqueradeMark) -> ForwardingState {
        var rules: [ServicePortRule] = []
        var vips: Set<IPAddress> = []
        var usableCounts: [ObjectKey: Int] = [:]
        var claimed: Set<ServiceAddress> = []
        // Sorted by key so a conflict always resolves the same way; indices, so no Service is copied around.
        let keys = services.map(\.key)
        for index in keys.indices.sorted(by: { keys[$0] < keys[$1] }) where services[index].type == .loadBalancer {
            let service = services[index]
            guard let addresses = assignments[service.key], !addresses.isEmpty else { continue }
            vips.formUnion(addresses)
            let local = service.externalTrafficPolicy == .local
            let excluded = unhealthy[service.key] ?? []
            // Per slice: its usable endpoints, so each keeps the port numbers of its own slice.
            var usableSlices: [(slice: EndpointSlice, endpoints: [EndpointSlice.Endpoint])] = []
            var usableAddresses: Set<IPAddress> = []
            for family in IPFamily.allCases {
                let slices = (backends[service.key] ?? []).filter { $0.addressType == family }
                let candidates = slices.flatMap { slice in
                    slice.endpoints.filter { !excluded.contains($0.address) && (!local || $0.nodeName == node) }
                }
                // The rule applies to the family's whole endpoint set: one ready endpoint anywhere
                // means no terminating one takes traffic.
                let chosen = Set(BackendSelection.usable(candidates).map(\.address))
                usableAddresses.formUnion(chosen)
                for slice in slices {
                    usableSlices.append((slice, slice.endpoints.filter { chosen.contains($0.address) && $0.address.family == family }))
                }
            }
            usableCounts[service.key] = usableAddresses.count
            for family in IPFamily.allCases {
                let familyVIPs = addresses.filter { $0.family == family }.sorted()
                guard !familyVIPs.isEmpty else { continue }
                for servicePort in service.ports {
                    var targets: Set<Backend> = []
                    for (slice, endpoints) in usableSlices where slice.addressType == family {
                        guard let port = BackendSelection.endpointPort(for: servicePort, in: slice) else { continue }
                        for endpoint in endpoints { targets.insert(Backend(address: endpoint.address, port: port.port)) }
                    }
                    guard !targets.isEmpty else { continue }
                    let won = familyVIPs.filter {
                        claimed.insert(ServiceAddress(vip: $0, protocol: servicePort.protocol, port: servicePort.port)).inserted
                    }
                    guard !won.isEmpty else { continue }
                    rules.append(ServicePortRule(service: service.key, family: family, protocol: servicePort.protocol,
                                                 port: servicePort.port, vips: won, backends: targets.sorted(),
                                                 masquerade: !local))
                }
            }
        }
        return ForwardingState(masqueradeMark: masqueradeMark, rules: rules, vips: vips, usableCounts: usableCounts)
    }

    /// Nodes with at least one usable endpoint of a service (for externalTrafficPolicy Local candidacy):
    /// the same per-node rule `plan` applies under Local, so a node announces exactly when it would forward.
    public static func nodesWithLocalEndpoints(_ slices: [EndpointSlice], excluding unhealthy: Set<IPAddress> = []) -> Set<String> {
        var byNode: [String: [IPFamily: [EndpointSlice.Endpoint]]] = [:]
        for slice in slices {
            for endpoint in slice.endpoints where !unhealthy.contains(endpoint.address) {
                guard let node = endpoint.nodeName else { continue }
                byNode[node, default: [:]][slice.addressType, default: []].append(endpoint)
            }
        }
        return Set(byNode.filter { _, families in
            families.values.contains { !BackendSelection.usable($0).isEmpty }
        }.keys)
    }
}
