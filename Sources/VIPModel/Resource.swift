/// One object of a kind MetalVIP handles, decoded from its document.
public enum Resource: Sendable, Hashable {
    case namespace(Namespace)
    case ipAddressPool(IPAddressPool)
    case l2Advertisement(L2Advertisement)
    case service(Service)
    case endpointSlice(EndpointSlice)
    case endpoints(Endpoints)

    /// Decodes and validates a document whose kind is known.
    public init(kind: Kind, document: Value) throws(FieldError) {
        switch kind {
        case .namespace: self = .namespace(try Namespace(document: document))
        case .ipAddressPool: self = .ipAddressPool(try IPAddressPool(document: document))
        case .l2Advertisement: self = .l2Advertisement(try L2Advertisement(document: document))
        case .service: self = .service(try Service(document: document))
        case .endpointSlice: self = .endpointSlice(try EndpointSlice(document: document))
        case .endpoints: self = .endpoints(try Endpoints(document: document))
        }
    }

    public var meta: ObjectMeta {
        switch self {
        case .namespace(let object): object.meta
        case .ipAddressPool(let object): object.meta
        case .l2Advertisement(let object): object.meta
        case .service(let object): object.meta
        case .endpointSlice(let object): object.meta
        case .endpoints(let object): object.meta
        }
    }

    public var kind: Kind {
        switch self {
        case .namespace: .namespace
        case .ipAddressPool: .ipAddressPool
        case .l2Advertisement: .l2Advertisement
        case .service: .service
        case .endpointSlice: .endpointSlice
        case .endpoints: .endpoints
        }
    }

    public var key: ObjectKey { ObjectKey(kind, namespace: meta.namespace, name: meta.name) }

    /// Field names in `spec` that the kind doesn't know: likely typos, reported as warnings.
    public static func warnings(kind: Kind, document: Value) -> [String] {
        switch kind {
        case .ipAddressPool: IPAddressPool.warnings(document: document)
        case .l2Advertisement: L2Advertisement.warnings(document: document)
        case .namespace, .service, .endpointSlice, .endpoints: []
        }
    }
}
