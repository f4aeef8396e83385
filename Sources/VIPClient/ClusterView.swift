import Foundation
import VIPAllocation
import VIPAnnounce
import VIPModel
import VIPStore

/// Read-only views of a snapshot, for `get` and `describe`. Pool names and usage are derived from the
/// current pools and assignments every time, never stored.
public struct ClusterView: Sendable {
    public let snapshot: ClusterSnapshot
    /// The assignments replayed into the engine, for per-pool usage.
    let usage: AddressSpace
    let now: Date

    public init(snapshot: ClusterSnapshot, now: Date = Date()) {
        self.snapshot = snapshot
        self.now = now
        var space = AddressSpace(pools: snapshot.pools.map {
            PoolDefinition(name: $0.resource.name, ranges: $0.resource.ranges, avoidBuggyIPs: $0.resource.avoidBuggyIPs)
        })
        for (service, assignment) in snapshot.assignments.sorted(by: { $0.key < $1.key }) {
            for address in assignment.value.addresses {
                // Shared addresses count once; any profile that is compatible with itself will do here.
                try? space.assign(address, to: service.namespacedName,
                                  profile: SharingProfile(key: "view", ports: [], backendKey: ""))
            }
        }
        usage = space
    }

    public func addresses(of service: ObjectKey) -> [IPAddress] {
        snapshot.assignments[service]?.value.addresses.sorted() ?? []
    }

    public func poolName(of service: ObjectKey) -> String? {
        addresses(of: service).lazy.compactMap { snapshot.pool(containing: $0)?.name }.first
    }

    func inScope(_ namespace: String, _ scope: String?) -> Bool { scope == nil || scope == namespace }

    // MARK: services

    /// - Parameter names: only these services (all when empty), as `kubectl get services a b`.
    public func services(namespace scope: String?, names: [String] = [], format: OutputFormat) -> String {
        let services = snapshot.services.filter { inScope($0.resource.meta.namespace, scope) }
            .filter { names.isEmpty || names.contains($0.resource.name) }
            .sorted { ($0.resource.meta.namespace, $0.resource.name) < ($1.resource.meta.namespace, $1.resource.name) }
        switch format {
        case .json: return DocumentOutput.json(DocumentOutput.list(services.map(document(of:))))
        case .yaml: return DocumentOutput.yaml(DocumentOutput.list(services.map(document(of:))))
        case .table, .wide:
            if services.isEmpty { return noResources(scope) }
            var headers = ["NAME", "TYPE", "EXTERNAL-IP", "PORT(S)", "AGE"]
            if scope == nil { headers.insert("NAMESPACE", at: 0) }
            if format == .wide { headers += ["POOL", "SELECTOR"] }
            var table = Table(headers)
            for stored in services {
                let service = stored.resource
                var row = [service.name, service.type.rawValue, externalIP(service), service.portsDisplay,
                           age(since: service.meta.creationTimestamp, now: now)]
                if scope == nil { row.insert(service.meta.namespace, at: 0) }
                if format == .wide {
                    row += [poolName(of: service.key) ?? "<none>", labelsDisplay(service.selector)]
                }
                table.add(row)
            }
            return table.rendered
        }
    }

    public func externalIP(_ service: Service) -> String {
        guard service.type == .loadBalancer else { return "<none>" }
        let addresses = addresses(of: service.key)
        return addresses.isEmpty ? "<pending>" : addresses.map(\.description).joined(separator: ",")
    }

    /// The Service in Kubernetes' shape: the applied document, plus the address under
    /// `status.loadBalancer.ingress[].ip` and the pool in `metallb.io/ip-allocated-from-pool`.
    public func document(of stored: StoredObject<Service>) -> Value {
        var document = stored.document
        let key = stored.resource.key
        let ingress = addresses(of: key).map { Value.object(["ip": .string($0.description), "ipMode": .string("VIP")]) }
        document.set(["status"], to: .object(["loadBalancer": .object(ingress.isEmpty ? [:] : ["ingress": .array(ingress)])]))
        if let pool = poolName(of: key) {
            document.set(["metadata", "annotations", ServiceAnnotation.ipAllocatedFromPool.key], to: .string(pool))
        }
        return document
    }

    // MARK: pools

    public func pools(format: OutputFormat) -> String {
        let pools = snapshot.pools
        switch format {
        case .json: return DocumentOutput.json(DocumentOutput.list(pools.map(document(of:))))
        case .yaml: return DocumentOutput.yaml(DocumentOutput.list(pools.map(document(of:))))
        case .table, .wide:
            if pools.isEmpty { return "No resources found" }
            var headers = ["NAME", "AUTO ASSIGN", "AVOID BUGGY IPS", "ADDRESSES",
                           "IPV4 IN USE", "IPV4 AVAILABLE", "IPV6 IN USE", "IPV6 AVAILABLE"]
            if format == .wide { headers += ["PRIORITY", "AGE"] }
            var table = Table(headers)
            for stored in pools {
                let pool = stored.resource
                let counts: [String] = usage.usage(ofPool: pool.name).map { usage in
                    [usage.ipv4.inUse, usage.ipv4.available, usage.ipv6.inUse, usage.ipv6.available].map(\.description)
                } ?? ["0", "0", "0", "0"]
                var row = [pool.name, String(pool.autoAssign), String(pool.avoidBuggyIPs),
                           pool.addressTexts.joined(separator: ",")] + counts
                if format == .wide {
                    row += [pool.serviceAllocation.map { $0.priority == 0 ? "<none>" : String($0.priority) } ?? "<none>",
                            age(since: pool.meta.creationTimestamp, now: now)]
                }
                table.add(row)
            }
            return table.rendered
        }
    }

    /// MetalLB's IPAddressPool status fields. Counts past Int64 (a /64 and up) are given as exact strings.
    public func document(of stored: StoredObject<IPAddressPool>) -> Value {
        var document = stored.document
        if let counts = usage.usage(ofPool: stored.resource.name) {
            func number(_ count: AddressCount) -> Value {
                Int64(count.description).map(Value.int) ?? .string(count.description)
            }
            document.set(["status"], to: .object([
                "assignedIPv4": number(counts.ipv4.inUse), "availableIPv4": number(counts.ipv4.available),
                "assignedIPv6": number(counts.ipv6.inUse), "availableIPv6": number(counts.ipv6.available),
            ]))
        }
        return document
    }

    // MARK: advertisements

    public func advertisements(format: OutputFormat) -> String {
        let advertisements = snapshot.advertisements
        switch format {
        case .json: return DocumentOutput.json(DocumentOutput.list(advertisements.map(\.document)))
        case .yaml: return DocumentOutput.yaml(DocumentOutput.list(advertisements.map(\.document)))
        case .table, .wide:
            if advertisements.isEmpty { return "No resources found" }
            var table = Table(["NAME", "IPADDRESSPOOLS", "IPADDRESSPOOL SELECTORS", "INTERFACES", "NODE SELECTORS", "AGE"])
            for stored in advertisements {
                let advertisement = stored.resource
                table.add([advertisement.name,
                           advertisement.ipAddressPools.isEmpty ? "<all>" : advertisement.ipAddressPools.joined(separator: ","),
                           selectorsDisplay(advertisement.ipAddressPoolSelectors),
                           advertisement.interfaces.isEmpty ? "<all>" : advertisement.interfaces.joined(separator: ","),
                           selectorsDisplay(advertisement.nodeSelectors),
                           age(since: advertisement.meta.creationTimestamp, now: now)])
            }
            return table.rendered
        }
    }

    // MARK: describe

    /// - Parameter announcement: the live claim on the service's address, from `L2View`.
    public func describe(service key: ObjectKey, announcement: Claim? = nil) -> String? {
        guard let stored = snapshot.service(key) else { return nil }
        let service = stored.resource
        var lines: [(String, String)] = [
            ("Name", service.name),
            ("Namespace", service.meta.namespace),
            ("Labels", labelsDisplay(service.meta.labels)),
            ("Annotations", labelsDisplay(service.meta.annotations, separator: ": ")),
            ("Selector", labelsDisplay(service.selector)),
            ("Type", service.type.rawValue),
            ("IP Family Policy", service.ipFamilyPolicy.rawValue),
            ("IP Families", service.familyRequirement.families.map(\.rawValue).joined(separator: ",")),
        ]
        if let requested = try? service.requestedAddresses(), !requested.isEmpty {
            lines.append(("Requested IPs", requested.map(\.description).joined(separator: ",")))
        }
        lines.append(("LoadBalancer Ingress", service.type == .loadBalancer ? externalIP(service) : "<none>"))
        lines.append(("Address Pool", poolName(of: key) ?? service.addressPool.map { "\($0) (requested)" } ?? "<none>"))
        lines.append(("Sharing Key", service.sharingKey.isEmpty ? "<none>" : service.sharingKey))
        if service.type == .loadBalancer {
            lines.append(("Announcing Node", announcement.map { "\($0.node) (\($0.interfaces.joined(separator: ",")))" } ?? "<none>"))
        }
        // As kubectl: each port, then the ready backends that port reaches (matched by port name).
        for port in service.ports {
            lines.append(("Port", "\(port.name ?? "<unset>")  \(port.port)/\(port.protocol.rawValue)"))
            lines.append(("Endpoints", endpointsLine(of: key, port: port)))
        }
        if service.ports.isEmpty {
            lines.append(("Port", "<none>"))
            lines.append(("Endpoints", endpointsLine(of: key, port: nil)))
        }
        if let check = try? service.healthCheck() {
            lines.append(("Health Check", check.description))
            let unhealthy = snapshot.events[key]?.value.unhealthyEndpoints ?? []
            lines.append(("Unhealthy Endpoints", unhealthy.isEmpty ? "<none>" : unhealthy.joined(separator: ",")))
        }
        lines.append(("External Traffic Policy", service.externalTrafficPolicy.rawValue))
        lines.append(("LoadBalancer Class", service.loadBalancerClass ?? "<none>"))
        let width = (lines.map(\.0.count).max() ?? 0) + 2
        var text = lines.map { ($0.0 + ":").padding(toLength: width, withPad: " ", startingAt: 0) + $0.1 }
            .joined(separator: "\n")
        let events = snapshot.events[key]?.value.events ?? []
        if events.isEmpty {
            text += "\nEvents:                  <none>"
        } else {
            var table = Table(["Type", "Reason", "Age", "From", "Message"])
            table.add(["----", "------", "----", "----", "-------"])
            for event in events {
                table.add([event.type, event.reason.rawValue, age(since: event.timestamp, now: now),
                           [.nodeAssigned, .endpointHealthy, .endpointUnhealthy].contains(event.reason) ? "metalvip-speaker" : "metalvip-controller", event.message])
            }
            text += "\nEvents:\n" + table.rendered.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
        }
        return text
    }

    func noResources(_ scope: String?) -> String {
        scope.map { "No resources found in \($0) namespace." } ?? "No resources found"
    }
}

func labelsDisplay(_ labels: [String: String], separator: String = "=") -> String {
    labels.isEmpty ? "<none>" : labels.sorted { $0.key < $1.key }.map { "\($0.key)\(separator)\($0.value)" }.joined(separator: ",")
}

func selectorsDisplay(_ selectors: [LabelSelector]) -> String {
    if selectors.isEmpty { return "<none>" }
    return selectors.map { selector in
        let labels = selector.matchLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let expressions = selector.matchExpressions.map { "\($0.key) \($0.operator.rawValue) (\($0.values.joined(separator: ",")))" }
        return (labels + expressions).joined(separator: ",")
    }.joined(separator: " | ")
}
