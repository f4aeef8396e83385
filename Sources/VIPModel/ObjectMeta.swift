/// The kinds MetalVIP handles. Everything else in a manifest is skipped.
public enum Kind: String, Sendable, Hashable, CaseIterable, Comparable, Codable {
    case namespace = "Namespace"
    case ipAddressPool = "IPAddressPool"
    case l2Advertisement = "L2Advertisement"
    case service = "Service"
    case endpointSlice = "EndpointSlice"
    case endpoints = "Endpoints"

    /// The `apiVersion` each kind must carry, as the Kubernetes API server would demand.
    public var apiVersion: String {
        switch self {
        case .namespace, .service, .endpoints: "v1"
        case .ipAddressPool, .l2Advertisement: "metallb.io/v1beta1"
        case .endpointSlice: "discovery.k8s.io/v1"
        }
    }

    /// Older API versions that are accepted as the same kind.
    public var acceptedAPIVersions: Set<String> {
        switch self {
        case .namespace, .service, .endpoints: ["v1"]
        case .ipAddressPool, .l2Advertisement: ["metallb.io/v1beta1", "metallb.io/v1beta2"]
        case .endpointSlice: ["discovery.k8s.io/v1"]
        }
    }

    /// kubectl's resource name, as in `ipaddresspool.metallb.io/NAME created`.
    public var resourceName: String {
        switch self {
        case .namespace: "namespace"
        case .service: "service"
        case .ipAddressPool: "ipaddresspool.metallb.io"
        case .l2Advertisement: "l2advertisement.metallb.io"
        case .endpointSlice: "endpointslice.discovery.k8s.io"
        case .endpoints: "endpoints"
        }
    }

    /// Whether objects of this kind live in a namespace.
    public var isNamespaced: Bool { self != .namespace }

    /// Dependencies apply first: namespaces, then pools, then what refers to pools.
    public var applyOrder: Int {
        switch self {
        case .namespace: 0
        case .ipAddressPool: 1
        case .l2Advertisement: 2
        case .service: 3
        case .endpointSlice, .endpoints: 4
        }
    }

    public static func < (lhs: Kind, rhs: Kind) -> Bool { lhs.applyOrder < rhs.applyOrder }
}

/// Kind, namespace and name: what identifies an object, here as in Kubernetes.
public struct ObjectKey: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var kind: Kind
    public var namespace: String
    public var name: String

    public init(_ kind: Kind, namespace: String, name: String) {
        self.kind = kind
        self.namespace = kind.isNamespaced ? namespace : ""
        self.name = name
    }

    /// `default/web`: how services name each other in owners and messages.
    public var namespacedName: String { kind.isNamespaced ? "\(namespace)/\(name)" : name }

    /// `service/web`, as kubectl prints it.
    public var description: String { "\(kind.resourceName)/\(name)" }

    public static func < (lhs: ObjectKey, rhs: ObjectKey) -> Bool {
        (lhs.kind, lhs.namespace, lhs.name) < (rhs.kind, rhs.namespace, rhs.name)
    }
}

public let defaultNamespace = "default"

public struct ObjectMeta: Sendable, Hashable {
    public var name: String
    public var namespace: String
    public var labels: [String: String]
    public var annotations: [String: String]
    /// RFC 3339 time the store first saw the object; nil in a manifest.
    public var creationTimestamp: String?

    public init(name: String, namespace: String = defaultNamespace, labels: [String: String] = [:],
                annotations: [String: String] = [:], creationTimestamp: String? = nil) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
        self.creationTimestamp = creationTimestamp
    }

    init(reading document: FieldReader, kind: Kind) throws(FieldError) {
        guard let metadata = try document.object("metadata") else {
            throw FieldError(path: "metadata", message: "is required")
        }
        guard let name = try metadata.string("name"), !name.isEmpty else {
            throw metadata.error("name", "is required")
        }
        if let problem = Self.nameProblem(name) { throw metadata.error("name", "invalid name \"\(name)\": \(problem)") }
        var namespace = try metadata.string("namespace") ?? defaultNamespace
        if namespace.isEmpty { namespace = defaultNamespace }
        if let problem = Self.nameProblem(namespace) {
            throw metadata.error("namespace", "invalid namespace \"\(namespace)\": \(problem)")
        }
        self.name = name
        self.namespace = kind.isNamespaced ? namespace : ""
        labels = try metadata.stringMap("labels")
        annotations = try metadata.stringMap("annotations")
        creationTimestamp = try metadata.string("creationTimestamp")
    }

    /// Names become store keys and file names, so they follow Kubernetes' DNS-1123 subdomain rule.
    static func nameProblem(_ name: String) -> String? {
        if name.utf8.count > 253 { return "must be at most 253 characters" }
        let allowed = name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "." }
        if !allowed { return "must consist of lower case letters, digits, '-' and '.'" }
        guard let first = name.unicodeScalars.first, let last = name.unicodeScalars.last,
              first != "-", first != ".", last != "-", last != "." else {
            return "must start and end with a letter or digit"
        }
        return nil
    }
}
