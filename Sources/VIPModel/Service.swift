/// The MetalLB annotations a Service may carry. Each is read under `metallb.io/` and under the older
/// `metallb.universe.tf/` prefix, so manifests written for either MetalLB generation apply unchanged.
public enum ServiceAnnotation: String, Sendable, CaseIterable {
    case loadBalancerIPs
    case addressPool = "address-pool"
    case allowSharedIP = "allow-shared-ip"
    /// Written by the controller on output, never read: the pool the address came from.
    case ipAllocatedFromPool = "ip-allocated-from-pool"

    public static let prefixes = ["metallb.io/", "metallb.universe.tf/"]

    public var key: String { Self.prefixes[0] + rawValue }

    /// The annotation's value and the exact key it was found under.
    public func lookup(_ annotations: [String: String]) -> (key: String, value: String)? {
        for prefix in Self.prefixes {
            if let value = annotations[prefix + rawValue] { return (prefix + rawValue, value) }
        }
        return nil
    }
}

public struct ServicePort: Sendable, Hashable {
    public enum PortProtocol: String, Sendable, Hashable, CaseIterable { case tcp = "TCP", udp = "UDP", sctp = "SCTP" }
    public var name: String?
    public var port: Int
    public var `protocol`: PortProtocol
    public var nodePort: Int?

    public init(name: String? = nil, port: Int, protocol: PortProtocol = .tcp, nodePort: Int? = nil) {
        self.name = name
        self.port = port
        self.protocol = `protocol`
        self.nodePort = nodePort
    }

    /// `80/TCP` or `80:30080/TCP`, as kubectl prints it.
    public var display: String {
        nodePort.map { "\(port):\($0)/\(`protocol`.rawValue)" } ?? "\(port)/\(`protocol`.rawValue)"
    }
}

public enum ServiceType: String, Sendable, Hashable, CaseIterable {
    case clusterIP = "ClusterIP", nodePort = "NodePort", loadBalancer = "LoadBalancer", externalName = "ExternalName"
}

public enum IPFamilyPolicy: String, Sendable, Hashable, CaseIterable {
    case singleStack = "SingleStack", preferDualStack = "PreferDualStack", requireDualStack = "RequireDualStack"
}

public enum TrafficPolicy: String, Sendable, Hashable, CaseIterable {
    case cluster = "Cluster", local = "Local"
}

/// A Kubernetes `Service` (`v1`), reduced to the fields that decide its load-balancer address.
public struct Service: Sendable, Hashable {
    public var meta: ObjectMeta
    public var type: ServiceType
    public var ports: [ServicePort]
    public var loadBalancerIP: IPAddress?
    public var loadBalancerClass: String?
    public var ipFamilyPolicy: IPFamilyPolicy
    /// As written; empty means the cluster default (IPv4 first).
    public var ipFamilies: [IPFamily]
    public var externalTrafficPolicy: TrafficPolicy
    public var selector: [String: String]

    public var name: String { meta.name }
    public var key: ObjectKey { ObjectKey(.service, namespace: meta.namespace, name: meta.name) }

    public init(meta: ObjectMeta, type: ServiceType = .loadBalancer, ports: [ServicePort] = [],
                loadBalancerIP: IPAddress? = nil, loadBalancerClass: String? = nil,
                ipFamilyPolicy: IPFamilyPolicy = .singleStack, ipFamilies: [IPFamily] = [],
                externalTrafficPolicy: TrafficPolicy = .cluster, selector: [String: String] = [:]) {
        self.meta = meta
        self.type = type
        self.ports = ports
        self.loadBalancerIP = loadBalancerIP
        self.loadBalancerClass = loadBalancerClass
        self.ipFamilyPolicy = ipFamilyPolicy
        self.ipFamilies = ipFamilies
        self.externalTrafficPolicy = externalTrafficPolicy
        self.selector = selector
    }

    public init(document: Value) throws(FieldError) {
        let root = try FieldReader(document)
        meta = try ObjectMeta(reading: root, kind: .service)
        let spec = try root.object("spec") ?? FieldReader(emptyAt: "spec")
        type = try spec.choice("type", as: ServiceType.self) ?? .clusterIP
        ports = []
        for port in try spec.objectList("ports") {
            guard let number = try port.int("port") else { throw port.error("port", "is required") }
            guard (1...65535).contains(number) else { throw port.error("port", "must be 1-65535, got \(number)") }
            let nodePort = try port.int("nodePort")
            if let nodePort, !(1...65535).contains(nodePort) {
                throw port.error("nodePort", "must be 1-65535, got \(nodePort)")
            }
            ports.append(ServicePort(name: try port.string("name"), port: number,
                                     protocol: try port.choice("protocol", as: ServicePort.PortProtocol.self) ?? .tcp,
                                     nodePort: nodePort))
        }
        for (index, port) in ports.enumerated() {
            if ports[..<index].contains(where: { $0.port == port.port && $0.protocol == port.protocol }) {
                throw FieldError(path: "spec.ports[\(index)]", message: "duplicate port \(port.port)/\(port.protocol.rawValue)")
            }
        }
        if let text = try spec.string("loadBalancerIP"), !text.isEmpty {
            guard let address = IPAddress(text) else {
                throw spec.error("loadBalancerIP", "invalid IP address \"\(text)\"")
            }
            loadBalancerIP = address
        } else {
            loadBalancerIP = nil
        }
        loadBalancerClass = try spec.string("loadBalancerClass")
        ipFamilyPolicy = try spec.choice("ipFamilyPolicy", as: IPFamilyPolicy.self) ?? .singleStack
        ipFamilies = []
        for (index, text) in try spec.stringList("ipFamilies").enumerated() {
            guard let family = IPFamily(rawValue: text) else {
                throw FieldError(path: "spec.ipFamilies[\(index)]", message: "unsupported value \"\(text)\": must be \"IPv4\" or \"IPv6\"")
            }
            if ipFamilies.contains(family) {
                throw FieldError(path: "spec.ipFamilies[\(index)]", message: "duplicate family \(text)")
            }
            ipFamilies.append(family)
        }
        if ipFamilyPolicy == .singleStack && ipFamilies.count > 1 {
            throw spec.error("ipFamilies", "lists two families but ipFamilyPolicy is SingleStack")
        }
        externalTrafficPolicy = try spec.choice("externalTrafficPolicy", as: TrafficPolicy.self) ?? .cluster
        selector = try spec.stringMap("selector")
        // Validate the annotations now, so a bad one fails `apply` instead of surfacing later.
        _ = try requestedAddresses()
        _ = try healthCheck()
    }

    /// The addresses the service asks for: `loadBalancerIPs` annotation, else `spec.loadBalancerIP`.
    /// At most one per family.
    public func requestedAddresses() throws(FieldError) -> [IPAddress] {
        guard let (key, value) = ServiceAnnotation.loadBalancerIPs.lookup(meta.annotations) else {
            return loadBalancerIP.map { [$0] } ?? []
        }
        let path = "metadata.annotations[\(key)]"
        var addresses: [IPAddress] = []
        for text in value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !text.isEmpty {
            guard let address = IPAddress(text) else {
                throw FieldError(path: path, message: "invalid IP address \"\(text)\"")
            }
            if let same = addresses.first(where: { $0.family == address.family }) {
                throw FieldError(path: path, message: "\(same) and \(address) are both \(address.family.rawValue): at most one address per family")
            }
            addresses.append(address)
        }
        if let loadBalancerIP, addresses != [loadBalancerIP] {
            throw FieldError(path: "spec.loadBalancerIP",
                             message: "is \(loadBalancerIP) but annotation \(key) is \"\(value)\": set only one of them")
        }
        return addresses
    }

    public var addressPool: String? {
        ServiceAnnotation.addressPool.lookup(meta.annotations)?.value.trimmingCharacters(in: .whitespaces)
    }

    public var sharingKey: String {
        ServiceAnnotation.allowSharedIP.lookup(meta.annotations)?.value ?? ""
    }

    /// The families the service needs, in preference order, and whether it needs all of them.
    public var familyRequirement: FamilyRequirement {
        switch ipFamilyPolicy {
        case .singleStack:
            return FamilyRequirement(families: [ipFamilies.first ?? .ipv4], requireAll: true)
        case .preferDualStack, .requireDualStack:
            var order = ipFamilies.isEmpty ? [.ipv4, .ipv6] : ipFamilies
            if order.count == 1 { order.append(order[0] == .ipv4 ? .ipv6 : .ipv4) }
            return FamilyRequirement(families: order, requireAll: ipFamilyPolicy == .requireDualStack)
        }
    }

    public var portsDisplay: String {
        ports.isEmpty ? "<none>" : ports.map(\.display).joined(separator: ",")
    }
}

/// The address families a service needs: one family, both (RequireDualStack), or both if possible.
public struct FamilyRequirement: Sendable, Hashable {
    /// In preference order.
    public var families: [IPFamily]
    /// false for PreferDualStack: the first family alone (or the second) also does.
    public var requireAll: Bool

    public init(families: [IPFamily], requireAll: Bool) {
        self.families = families
        self.requireAll = requireAll
    }

    public var isDualStack: Bool { families.count > 1 }
}

import Foundation
