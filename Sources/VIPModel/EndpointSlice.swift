/// The label that ties an EndpointSlice to its Service, as the Kubernetes EndpointSlice controller writes it.
public let serviceNameLabel = "kubernetes.io/service-name"

/// A Kubernetes `EndpointSlice` (`discovery.k8s.io/v1`): some backends of one Service, of one family.
public struct EndpointSlice: Sendable, Hashable {
    /// One backend. Kubernetes allows several addresses per endpoint; like kube-proxy, only the first is used.
    public struct Endpoint: Sendable, Hashable {
        public var address: IPAddress
        /// Takes traffic. Absent in the document means true.
        public var ready: Bool
        /// Can serve, even while terminating. Absent means the same as `ready`.
        public var serving: Bool
        /// Going away. Absent means false.
        public var terminating: Bool
        /// The node the backend runs on, for `externalTrafficPolicy: Local`.
        public var nodeName: String?

        public init(address: IPAddress, ready: Bool = true, serving: Bool? = nil, terminating: Bool = false,
                    nodeName: String? = nil) {
            self.address = address
            self.ready = ready
            self.serving = serving ?? ready
            self.terminating = terminating
            self.nodeName = nodeName
        }
    }

    /// A port the endpoints listen on. A service port maps to it by name.
    public struct Port: Sendable, Hashable {
        /// nil for the single unnamed port.
        public var name: String?
        public var port: Int
        public var `protocol`: ServicePort.PortProtocol

        public init(name: String? = nil, port: Int, protocol: ServicePort.PortProtocol = .tcp) {
            self.name = name
            self.port = port
            self.protocol = `protocol`
        }
    }

    public var meta: ObjectMeta
    public var addressType: IPFamily
    /// The Service this slice belongs to, in the slice's namespace (label `kubernetes.io/service-name`).
    public var serviceName: String
    public var endpoints: [Endpoint]
    public var ports: [Port]

    public var name: String { meta.name }
    public var key: ObjectKey { ObjectKey(.endpointSlice, namespace: meta.namespace, name: meta.name) }
    public var service: ObjectKey { ObjectKey(.service, namespace: meta.namespace, name: serviceName) }

    public init(meta: ObjectMeta, addressType: IPFamily, serviceName: String, endpoints: [Endpoint], ports: [Port]) {
        self.meta = meta
        self.addressType = addressType
        self.serviceName = serviceName
        self.endpoints = endpoints
        self.ports = ports
    }

    public init(document: Value) throws(FieldError) {
        let root = try FieldReader(document)
        meta = try ObjectMeta(reading: root, kind: .endpointSlice)
        guard let service = meta.labels[serviceNameLabel], !service.isEmpty else {
            throw FieldError(path: "metadata.labels[\(serviceNameLabel)]",
                             message: "is required: it names the Service this slice belongs to")
        }
        if let problem = ObjectMeta.nameProblem(service) {
            throw FieldError(path: "metadata.labels[\(serviceNameLabel)]", message: "invalid service name \"\(service)\": \(problem)")
        }
        serviceName = service
        guard let type = try root.string("addressType") else { throw root.error("addressType", "is required") }
        switch type {
        case "IPv4": addressType = .ipv4
        case "IPv6": addressType = .ipv6
        case "FQDN": throw root.error("addressType", "\"FQDN\" is not supported: MetalVIP forwards to IP addresses; use \"IPv4\" or \"IPv6\"")
        default: throw root.error("addressType", "unsupported value \"\(type)\": must be \"IPv4\" or \"IPv6\"")
        }
        endpoints = []
        for endpoint in try root.objectList("endpoints") {
            let addresses = try endpoint.stringList("addresses")
            guard !addresses.isEmpty else { throw endpoint.error("addresses", "must list at least one address") }
            var parsed: [IPAddress] = []
            for (index, text) in addresses.enumerated() {
                let path = "\(endpoint.pathOf("addresses"))[\(index)]"
                guard let address = IPAddress(text) else {
                    throw FieldError(path: path, message: "invalid IP address \"\(text)\"")
                }
                guard address.family == addressType else {
                    throw FieldError(path: path, message: "\(text) is \(address.family.rawValue) but addressType is \(addressType.rawValue)")
                }
                parsed.append(address)
            }
            let conditions = try endpoint.object("conditions") ?? FieldReader(emptyAt: endpoint.pathOf("conditions"))
            let ready = try conditions.bool("ready") ?? true
            let nodeName = try endpoint.string("nodeName")
            if let nodeName, nodeName.isEmpty { throw endpoint.error("nodeName", "must not be empty") }
            endpoints.append(Endpoint(address: parsed[0], ready: ready, serving: try conditions.bool("serving"),
                                      terminating: try conditions.bool("terminating") ?? false, nodeName: nodeName))
        }
        ports = try Self.ports(try root.objectList("ports"))
    }

    /// `ports[]` of a slice or of an Endpoints subset: same fields, same rules.
    static func ports(_ readers: [FieldReader]) throws(FieldError) -> [Port] {
        var ports: [Port] = []
        for reader in readers {
            guard let number = try reader.int("port") else { throw reader.error("port", "is required") }
            guard (1...65535).contains(number) else { throw reader.error("port", "must be 1-65535, got \(number)") }
            let name = try reader.string("name").flatMap { $0.isEmpty ? nil : $0 }
            let port = Port(name: name, port: number,
                            protocol: try reader.choice("protocol", as: ServicePort.PortProtocol.self) ?? .tcp)
            if ports.contains(where: { $0.name == port.name }) {
                throw reader.error("name", name.map { "duplicate port name \"\($0)\"" } ?? "two ports without a name: name all but one")
            }
            ports.append(port)
        }
        return ports
    }
}

/// A Kubernetes v1 `Endpoints` object: the older form of a Service's backends, named like its Service.
/// A Service that also has EndpointSlices uses those instead, as Kubernetes mirrors one into the other.
public struct Endpoints: Sendable, Hashable {
    public struct Subset: Sendable, Hashable {
        public var ready: [EndpointSlice.Endpoint]
        public var notReady: [EndpointSlice.Endpoint]
        public var ports: [EndpointSlice.Port]
    }

    public var meta: ObjectMeta
    public var subsets: [Subset]

    public var name: String { meta.name }
    public var key: ObjectKey { ObjectKey(.endpoints, namespace: meta.namespace, name: meta.name) }
    public var service: ObjectKey { ObjectKey(.service, namespace: meta.namespace, name: meta.name) }

    public init(meta: ObjectMeta, subsets: [Subset]) {
        self.meta = meta
        self.subsets = subsets
    }

    public init(document: Value) throws(FieldError) {
        let root = try FieldReader(document)
        meta = try ObjectMeta(reading: root, kind: .endpoints)
        subsets = []
        for subset in try root.objectList("subsets") {
            func read(_ key: String, ready: Bool) throws(FieldError) -> [EndpointSlice.Endpoint] {
                var result: [EndpointSlice.Endpoint] = []
                for address in try subset.objectList(key) {
                    guard let text = try address.string("ip") else { throw address.error("ip", "is required") }
                    guard let ip = IPAddress(text) else { throw address.error("ip", "invalid IP address \"\(text)\"") }
                    result.append(EndpointSlice.Endpoint(address: ip, ready: ready, nodeName: try address.string("nodeName")))
                }
                return result
            }
            subsets.append(Subset(ready: try read("addresses", ready: true), notReady: try read("notReadyAddresses", ready: false),
                                  ports: try EndpointSlice.ports(try subset.objectList("ports"))))
        }
    }

    /// The same backends as slices, one per subset and family, so one code path serves both forms.
    public var slices: [EndpointSlice] {
        var slices: [EndpointSlice] = []
        for (index, subset) in subsets.enumerated() {
            for family in IPFamily.allCases {
                let endpoints = (subset.ready + subset.notReady).filter { $0.address.family == family }
                guard !endpoints.isEmpty else { continue }
                var sliceMeta = meta
                sliceMeta.name = "\(meta.name)-subset\(index)-\(family.rawValue.lowercased())"
                slices.append(EndpointSlice(meta: sliceMeta, addressType: family, serviceName: meta.name,
                                            endpoints: endpoints, ports: subset.ports))
            }
        }
        return slices
    }
}
