/// MetalLB's `IPAddressPool` (`metallb.io/v1beta1`).
public struct IPAddressPool: Sendable, Hashable {
    public var meta: ObjectMeta
    /// The entries of `spec.addresses` as written, for display.
    public var addressTexts: [String]
    /// The same entries parsed, in the same order.
    public var ranges: [AddressRange]
    public var autoAssign: Bool
    /// Skip IPv4 addresses ending in .0 and .255, which some old consumer gear drops.
    public var avoidBuggyIPs: Bool
    /// When set, the pool is pinned: only services it matches get addresses from it automatically.
    public var serviceAllocation: ServiceAllocation?

    public var name: String { meta.name }

    public init(meta: ObjectMeta, addresses: [String], autoAssign: Bool = true, avoidBuggyIPs: Bool = false,
                serviceAllocation: ServiceAllocation? = nil) throws(FieldError) {
        self.meta = meta
        self.addressTexts = addresses
        self.autoAssign = autoAssign
        self.avoidBuggyIPs = avoidBuggyIPs
        self.serviceAllocation = serviceAllocation
        self.ranges = try Self.parse(addresses, path: "spec.addresses")
    }

    static let knownSpecFields: Set<String> = ["addresses", "autoAssign", "avoidBuggyIPs", "serviceAllocation"]

    public init(document: Value) throws(FieldError) {
        let root = try FieldReader(document)
        meta = try ObjectMeta(reading: root, kind: .ipAddressPool)
        guard let spec = try root.object("spec") else { throw FieldError(path: "spec", message: "is required") }
        addressTexts = try spec.stringList("addresses")
        if addressTexts.isEmpty { throw spec.error("addresses", "must list at least one CIDR, range or address") }
        ranges = try Self.parse(addressTexts, path: spec.pathOf("addresses"))
        autoAssign = try spec.bool("autoAssign") ?? true
        avoidBuggyIPs = try spec.bool("avoidBuggyIPs") ?? false
        serviceAllocation = try spec.object("serviceAllocation").map { reader throws(FieldError) in
            try ServiceAllocation(reading: reader)
        }
        for (index, range) in ranges.enumerated() {
            for other in ranges[(index + 1)...] where range.overlaps(other) {
                throw FieldError(path: "spec.addresses", message: "\(range) and \(other) overlap")
            }
        }
    }

    static func parse(_ texts: [String], path: String) throws(FieldError) -> [AddressRange] {
        var ranges: [AddressRange] = []
        for (index, text) in texts.enumerated() {
            do {
                ranges.append(try AddressRange.parse(text))
            } catch {
                throw FieldError(path: "\(path)[\(index)]", message: error.description)
            }
        }
        return ranges
    }

    public static func warnings(document: Value) -> [String] {
        guard let spec = try? FieldReader(document).object("spec") else { return [] }
        return spec.unknownKeys(knownSpecFields).map { "unknown field \"\($0)\"" }
    }

    public func contains(_ address: IPAddress) -> Bool { ranges.contains { $0.contains(address) } }

    public var families: Set<IPFamily> { Set(ranges.map(\.family)) }
}

/// `spec.serviceAllocation`: which services a pinned pool serves, and before which other pools.
public struct ServiceAllocation: Sendable, Hashable {
    /// Lower is preferred; 0 means "no priority", tried after every pool that has one.
    public var priority: Int
    public var namespaces: [String]
    public var namespaceSelectors: [LabelSelector]
    public var serviceSelectors: [LabelSelector]

    public init(priority: Int = 0, namespaces: [String] = [], namespaceSelectors: [LabelSelector] = [],
                serviceSelectors: [LabelSelector] = []) {
        self.priority = priority
        self.namespaces = namespaces
        self.namespaceSelectors = namespaceSelectors
        self.serviceSelectors = serviceSelectors
    }

    init(reading reader: FieldReader) throws(FieldError) {
        priority = try reader.int("priority") ?? 0
        if priority < 0 { throw reader.error("priority", "must be 0 or more, got \(priority)") }
        namespaces = try reader.stringList("namespaces")
        namespaceSelectors = try LabelSelector.list("namespaceSelectors", in: reader)
        serviceSelectors = try LabelSelector.list("serviceSelectors", in: reader)
    }

    /// Namespace rule: listed by name or matched by a selector (either list empty means no limit from it);
    /// service rule: any service selector matches. Both must hold.
    public func matches(namespace: String, namespaceLabels: [String: String], serviceLabels: [String: String]) -> Bool {
        let namespaceOK = (namespaces.isEmpty && namespaceSelectors.isEmpty)
            || namespaces.contains(namespace)
            || namespaceSelectors.contains { $0.matches(namespaceLabels) }
        let serviceOK = serviceSelectors.isEmpty || serviceSelectors.contains { $0.matches(serviceLabels) }
        return namespaceOK && serviceOK
    }

    /// Sort key: pools with a priority first, lowest number first.
    public var rank: Int { priority == 0 ? Int.max : priority }
}
