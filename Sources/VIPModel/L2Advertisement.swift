/// MetalLB's `L2Advertisement`: which pools are announced on layer 2, from which nodes, on which interfaces.
public struct L2Advertisement: Sendable, Hashable {
    public var meta: ObjectMeta
    public var ipAddressPools: [String]
    public var ipAddressPoolSelectors: [LabelSelector]
    public var nodeSelectors: [LabelSelector]
    public var interfaces: [String]

    public var name: String { meta.name }

    static let knownSpecFields: Set<String> = ["ipAddressPools", "ipAddressPoolSelectors", "nodeSelectors", "interfaces"]

    public init(meta: ObjectMeta, ipAddressPools: [String] = [], ipAddressPoolSelectors: [LabelSelector] = [],
                nodeSelectors: [LabelSelector] = [], interfaces: [String] = []) {
        self.meta = meta
        self.ipAddressPools = ipAddressPools
        self.ipAddressPoolSelectors = ipAddressPoolSelectors
        self.nodeSelectors = nodeSelectors
        self.interfaces = interfaces
    }

    public init(document: Value) throws(FieldError) {
        let root = try FieldReader(document)
        meta = try ObjectMeta(reading: root, kind: .l2Advertisement)
        // An L2Advertisement with no spec announces every pool from every node, as in MetalLB.
        let spec = try root.object("spec") ?? FieldReader(emptyAt: "spec")
        ipAddressPools = try spec.stringList("ipAddressPools")
        ipAddressPoolSelectors = try LabelSelector.list("ipAddressPoolSelectors", in: spec)
        nodeSelectors = try LabelSelector.list("nodeSelectors", in: spec)
        interfaces = try spec.stringList("interfaces")
        for (index, name) in interfaces.enumerated() where !Self.isValidInterfaceName(name) {
            throw FieldError(path: "spec.interfaces[\(index)]",
                             message: "invalid interface name \"\(name)\": 1-15 characters, no '/', whitespace or ':'")
        }
    }

    public static func warnings(document: Value) -> [String] {
        guard let spec = try? FieldReader(document).object("spec") else { return [] }
        return spec.unknownKeys(knownSpecFields).map { "unknown field \"\($0)\"" }
    }

    /// Linux interface names: IFNAMSIZ-1 bytes, no slash or whitespace.
    static func isValidInterfaceName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 15 && name != "." && name != ".."
            && !name.unicodeScalars.contains { $0 == "/" || $0 == ":" || $0.properties.isWhitespace }
    }

    /// Whether this advertisement announces the pool; no pools and no selectors means all pools.
    public func selects(pool: IPAddressPool) -> Bool {
        if ipAddressPools.isEmpty && ipAddressPoolSelectors.isEmpty { return true }
        return ipAddressPools.contains(pool.name) || ipAddressPoolSelectors.contains { $0.matches(pool.meta.labels) }
    }

    /// Whether a node with these labels may announce for this advertisement.
    public func selects(nodeLabels: [String: String]) -> Bool {
        nodeSelectors.isEmpty || nodeSelectors.contains { $0.matches(nodeLabels) }
    }
}

/// A `Namespace` (`v1`): only its labels matter, for pools' `namespaceSelectors`.
public struct Namespace: Sendable, Hashable {
    public var meta: ObjectMeta
    public var name: String { meta.name }

    public init(document: Value) throws(FieldError) {
        meta = try ObjectMeta(reading: try FieldReader(document), kind: .namespace)
    }

    /// Labels as Kubernetes reports them, including the automatic `kubernetes.io/metadata.name`.
    public static func labels(name: String, declared: [String: String]) -> [String: String] {
        declared.merging(["kubernetes.io/metadata.name": name]) { _, automatic in automatic }
    }
}
