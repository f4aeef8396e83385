import VIPAnnounce
import VIPForwarding
import VIPHealthCheck
import VIPModel
import VIPStore

/// What the speaker needs to carry traffic to a VIP's backends: where the rules go, and who checks endpoints.
/// Without it the speaker only answers ARP/NDP, for users whose traffic something else carries.
public struct DataPath: Sendable {
    public var applier: any RulesetApplier
    public var health: HealthMonitor?

    public init(applier: any RulesetApplier, health: HealthMonitor?) {
        self.applier = applier
        self.health = health
    }
}

/// The forwarding inputs read from one snapshot: pure, so every node derives the same candidacy from it.
struct ForwardingInputs {
    var services: [Service]
    var assignments: [ObjectKey: [IPAddress]]
    var backends: [ObjectKey: [EndpointSlice]]

    init(_ snapshot: ClusterSnapshot) {
        services = snapshot.services.map(\.resource).filter { $0.type == .loadBalancer }
        assignments = snapshot.assignments.mapValues(\.value.addresses)
        backends = snapshot.backendSlicesByService
    }

    /// For each Local-policy service whose backends are in the store, the nodes with a usable endpoint of it:
    /// only those may announce it. Derived from the store alone, so every speaker agrees whatever its flags; a
    /// Local service with no slices stored (traffic carried by kube-proxy, say) keeps every node, as before.
    var localEndpointNodes: [ObjectKey: Set<String>] {
        var result: [ObjectKey: Set<String>] = [:]
        for service in services where service.externalTrafficPolicy == .local {
            guard let slices = backends[service.key], !slices.isEmpty else { continue }
            result[service.key] = ForwardingPlanner.nodesWithLocalEndpoints(slices)
        }
        return result
    }

    /// The endpoints `node` must check: under Cluster, every usable endpoint of the groups it owns or is next in
    /// line for (a takeover then starts with fresh health); under Local, its own endpoints, which decide whether
    /// it may announce at all. Nobody else checks. Checks go to the port the service's first port maps to.
    func healthTargets(node: String, plans: [GroupPlan]) -> Set<HealthTarget> {
        var checkedGroups: Set<ObjectKey> = []
        for plan in plans where plan.candidates.prefix(2).contains(where: { $0.node == node }) {
            checkedGroups.formUnion(plan.group.services)
        }
        var specs: [ObjectKey: HealthCheckSpec] = [:]
        for service in services where service.externalTrafficPolicy == .local || checkedGroups.contains(service.key) {
            if let spec = try? service.healthCheck() { specs[service.key] = spec }
        }
        guard !specs.isEmpty else { return [] }
        // The planner's own view before health: Local keeps this node's endpoints, Cluster all usable ones.
        let checked = services.filter { specs[$0.key] != nil }
        let state = ForwardingPlanner.plan(services: checked, assignments: assignments, backends: backends, node: node, unhealthy: [:])
        let firstPorts = Dictionary(checked.compactMap { service in service.ports.first.map { (service.key, $0) } },
                                    uniquingKeysWith: { first, _ in first })
        var targets: Set<HealthTarget> = []
        for rule in state.rules {
            guard let spec = specs[rule.service], let first = firstPorts[rule.service],
                  first.port == rule.port, first.protocol == rule.protocol else { continue }
            for backend in rule.backends {
                targets.insert(HealthTarget(service: rule.service, address: backend.address, port: backend.port, spec: spec))
            }
        }
        return targets
    }

    /// Local-policy services with endpoints on `node` that all fail their checks: the node must not announce them.
    func unservable(node: String, unhealthy: [ObjectKey: Set<IPAddress>]) -> Set<ObjectKey> {
        var result: Set<ObjectKey> = []
        for service in services where service.externalTrafficPolicy == .local {
            guard let down = unhealthy[service.key], !down.isEmpty else { continue }
            let slices = backends[service.key] ?? []
            if ForwardingPlanner.nodesWithLocalEndpoints(slices).contains(node)
                && !ForwardingPlanner.nodesWithLocalEndpoints(slices, excluding: down).contains(node) {
                result.insert(service.key)
            }
        }
        return result
    }
}
