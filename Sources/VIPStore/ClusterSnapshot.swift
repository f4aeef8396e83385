import Foundation
import Synchronization
import VIPModel

/// An applied object as the store holds it: the document as written (plus creation time; `.null` when the
/// reader's cache drops documents) and its record.
public struct StoredObject<Resource: Sendable>: Sendable {
    public var resource: Resource
    public var document: Value
    public var record: Record

    public init(resource: Resource, document: Value, record: Record) {
        self.resource = resource
        self.document = document
        self.record = record
    }
}

/// A record MetalVIP wrote about a service, decoded, with its record for compare-and-swap.
public struct StoredValue<T: Sendable>: Sendable {
    public var value: T
    public var record: Record

    public init(value: T, record: Record) {
        self.value = value
        self.record = record
    }
}

/// Everything in the store that decides addresses, read in one pass. Unreadable entries are listed in
/// `problems` by name and otherwise ignored, so one bad file never stops a reader.
public struct ClusterSnapshot: Sendable {
    public var namespaces: [String: StoredObject<Namespace>] = [:]
    /// Sorted by name.
    public var pools: [StoredObject<IPAddressPool>] = []
    public var advertisements: [StoredObject<L2Advertisement>] = []
    /// Sorted by creation (create revision), then namespace and name: the order services were applied in.
    public var services: [StoredObject<Service>] = []
    /// Sorted by namespace and name.
    public var endpointSlices: [StoredObject<EndpointSlice>] = []
    /// Sorted by namespace and name.
    public var endpoints: [StoredObject<Endpoints>] = []
    public var assignments: [ObjectKey: StoredValue<ServiceAssignment>] = [:]
    public var events: [ObjectKey: StoredValue<ServiceEvents>] = [:]
    public var problems: [String] = []
    /// The newest store revision seen while loading; watching from the lowest listing revision misses nothing.
    public var revision: Revision = 0
    /// The decoded records of the load in progress, and of the one before; nil once the load has returned.
    var cache: SnapshotCache.Entries?

    public init() {}

    /// - Parameters:
    ///   - events: also read every service's events (the CLI wants them; a speaker doesn't).
    ///   - cache: decoded records of the previous load; those at the same revision are not decoded again.
    public static func load(from store: any Store, events includeEvents: Bool = true,
                            cache: SnapshotCache? = nil) async throws -> ClusterSnapshot {
        var snapshot = ClusterSnapshot()
        snapshot.cache = cache?.startingLoad()
        var revisions: [Revision] = []
        func listing(_ prefix: String) async throws -> Listing {
            let listing = try await store.list(prefix: prefix)
            revisions.append(listing.revision)
            snapshot.problems += listing.skipped.map { "skipped \($0.name): \($0.reason)" }
            return listing
        }
        for kind in Kind.allCases {
            for record in try await listing(Keyspace.prefix(of: kind)).records {
                snapshot.add(record, kind: kind)
            }
        }
        for record in try await listing(Keyspace.assignmentsPrefix).records { snapshot.addAssignment(record) }
        for record in includeEvents ? try await listing(Keyspace.eventsPrefix).records : [] { snapshot.addEvents(record) }
        snapshot.revision = revisions.min() ?? 0
        snapshot.finish(cache)
        return snapshot
    }

    /// What a mirror holds (objects, assignments, events), without reading the store. Kinds it does not
    /// mirror stay empty: the controller needs no backends nor advertisements.
    public static func assemble(from mirror: RecordMirror, cache: SnapshotCache? = nil) -> ClusterSnapshot {
        var snapshot = ClusterSnapshot()
        snapshot.cache = cache?.startingLoad()
        snapshot.problems = mirror.skippedEntries.map { "skipped \($0.name): \($0.reason)" }
        let mirrored = Set(mirror.prefixes)
        for kind in Kind.allCases where mirrored.contains(Keyspace.prefix(of: kind)) {
            for record in mirror.records(under: Keyspace.prefix(of: kind)) { snapshot.add(record, kind: kind) }
        }
        for record in mirrored.contains(Keyspace.assignmentsPrefix) ? mirror.records(under: Keyspace.assignmentsPrefix) : [:].values {
            snapshot.addAssignment(record)
        }
        for record in mirrored.contains(Keyspace.eventsPrefix) ? mirror.records(under: Keyspace.eventsPrefix) : [:].values {
            snapshot.addEvents(record)
        }
        snapshot.revision = mirror.revision
        snapshot.finish(cache)
        return snapshot
    }

    private mutating func finish(_ cache: SnapshotCache?) {
        sort()
        // The load's state goes back to the cache, not out with the snapshot: a speaker keeps its snapshot, and
        // with it held two generations of decoded records. A load that fails leaves the cache as it was.
        if let cache, let used = self.cache { cache.finishLoad(used) }
        self.cache = nil
    }

    /// Only the named objects (with each service's assignment), by point reads, and the pools: what
    /// `get services NAME` shows costs a few reads however many services are stored.
    public static func load(from store: any Store, objects keys: [ObjectKey]) async throws -> ClusterSnapshot {
        var snapshot = ClusterSnapshot()
        let pools = try await store.list(prefix: Keyspace.prefix(of: .ipAddressPool))
        snapshot.problems += pools.skipped.map { "skipped \($0.name): \($0.reason)" }
        for record in pools.records { snapshot.add(record, kind: .ipAddressPool) }
        for key in keys {
            if let record = try await store.get(Keyspace.key(of: key)) { snapshot.add(record, kind: key.kind) }
            if key.kind == .service, let record = try await store.get(Keyspace.assignment(of: key)) { snapshot.addAssignment(record) }
        }
        snapshot.sort()
        snapshot.revision = pools.revision
        return snapshot
    }

    /// Total orders, so a snapshot does not depend on the order records were read in (a listing is by key,
    /// a mirror in no order): same-named pools and advertisements go by namespace, as their keys would.
    private mutating func sort() {
        pools.sort { ($0.resource.name, $0.resource.meta.namespace) < ($1.resource.name, $1.resource.meta.namespace) }
        advertisements.sort { ($0.resource.name, $0.resource.meta.namespace) < ($1.resource.name, $1.resource.meta.namespace) }
        endpointSlices.sort { $0.resource.key < $1.resource.key }
        endpoints.sort { $0.resource.key < $1.resource.key }
        services.sort {
            ($0.record.createRevision, $0.resource.meta.namespace, $0.resource.name)
                < ($1.record.createRevision, $1.resource.meta.namespace, $1.resource.name)
        }
    }

    mutating func addEvents(_ record: Record) {
        guard let service = Keyspace.service(fromKey: record.key, prefix: Keyspace.eventsPrefix) else { return }
        if case .events(let events)? = cache?.reuse(record) {
            self.events[service] = StoredValue(value: events, record: record)
        } else if let events = try? RecordCoding.decode(ServiceEvents.self, from: record.value) {
            cache?.keep(record, .events(events))
            self.events[service] = StoredValue(value: events, record: record)
        }
    }

    mutating func addAssignment(_ record: Record) {
        guard let service = Keyspace.service(fromKey: record.key, prefix: Keyspace.assignmentsPrefix) else { return }
        if case .assignment(let assignment)? = cache?.reuse(record) {
            assignments[service] = StoredValue(value: assignment, record: record)
            return
        }
        do {
            let assignment = try RecordCoding.decode(ServiceAssignment.self, from: record.value)
            cache?.keep(record, .assignment(assignment))
            assignments[service] = StoredValue(value: assignment, record: record)
        } catch {
            problems.append("skipped \(record.key): unreadable assignment: \(error)")
        }
    }

    mutating func add(_ record: Record, kind: Kind) {
        let document: Value
        let resource: VIPModel.Resource
        do {
            if case .object(let cachedResource, let cachedDocument)? = cache?.reuse(record) {
                (resource, document) = (cachedResource, cachedDocument)
            } else {
                let decoded = try JSONText.parse(record.value)
                resource = try VIPModel.Resource(kind: kind, document: decoded)
                document = cache?.keepsDocuments == false ? .null : decoded
                cache?.keep(record, .object(resource, document))
            }
        } catch {
            problems.append("skipped \(record.key): not a valid \(kind.rawValue): \(error)")
            return
        }
        switch resource {
        case .namespace(let namespace):
            namespaces[namespace.name] = StoredObject(resource: namespace, document: document, record: record)
        case .ipAddressPool(let pool):
            pools.append(StoredObject(resource: pool, document: document, record: record))
        case .l2Advertisement(let advertisement):
            advertisements.append(StoredObject(resource: advertisement, document: document, record: record))
        case .service(let service):
            services.append(StoredObject(resource: service, document: document, record: record))
        case .endpointSlice(let slice):
            endpointSlices.append(StoredObject(resource: slice, document: document, record: record))
        case .endpoints(let endpoints):
            self.endpoints.append(StoredObject(resource: endpoints, document: document, record: record))
        }
    }

    /// A namespace's labels, with the automatic name label even when no Namespace was applied.
    public func namespaceLabels(_ name: String) -> [String: String] {
        Namespace.labels(name: name, declared: namespaces[name]?.resource.meta.labels ?? [:])
    }

    /// A service's backends: its EndpointSlices, or, when it has none, its v1 Endpoints as slices.
    public func backendSlices(of service: ObjectKey) -> [EndpointSlice] {
        let slices = endpointSlices.map(\.resource).filter { $0.service == service }
        if !slices.isEmpty { return slices }
        return endpoints.first { $0.resource.service == service }?.resource.slices ?? []
    }

    /// Every service's backends, as `backendSlices(of:)` gives them, in one pass over the slices.
    public var backendSlicesByService: [ObjectKey: [EndpointSlice]] {
        var result: [ObjectKey: [EndpointSlice]] = [:]
        for slice in endpointSlices { result[slice.resource.service, default: []].append(slice.resource) }
        for object in endpoints where result[object.resource.service] == nil {
            result[object.resource.service] = object.resource.slices
        }
        return result
    }

    public func service(_ key: ObjectKey) -> StoredObject<Service>? {
        services.first { $0.resource.key == key }
    }

    /// The pool that contains `address`, by the current pools.
    public func pool(containing address: IPAddress) -> IPAddressPool? {
        pools.first { $0.resource.contains(address) }?.resource
    }
}

/// Decoded records by key and revision, kept from one snapshot to the next by a long-running reader (the
/// controller reloading the store, the speaker assembling from its mirror): each decodes only the records
/// that changed. JSON decoding was a third of a speaker's idle CPU at 10k services, and of every controller pass.
public final class SnapshotCache: Sendable {
    enum Decoded: Sendable {
        case object(VIPModel.Resource, Value)
        case assignment(ServiceAssignment)
        case events(ServiceEvents)
    }

    struct Entries: Sendable {
        let keepsDocuments: Bool
        var previous: [String: (revision: Revision, decoded: Decoded)]
        var current: [String: (revision: Revision, decoded: Decoded)] = [:]

        /// The previous decode of this record, if it is at the same revision; kept for the next load either way.
        mutating func reuse(_ record: Record) -> Decoded? {
            guard let entry = previous[record.key], entry.revision == record.modRevision else { return nil }
            current[record.key] = entry
            return entry.decoded
        }

        mutating func keep(_ record: Record, _ decoded: Decoded) {
            current[record.key] = (record.modRevision, decoded)
            decodedAny = true
        }

        var decodedAny = false
        /// Whether this load differs from the previous one: a record decoded anew, or one gone.
        var changed: Bool { decodedAny || current.count != previous.count }
    }

    private let entries = Mutex<[String: (revision: Revision, decoded: Decoded)]>([:])
    private let lastChanged = Atomic<Bool>(true)

    /// Whether the last load found anything that the one before it had not: a reload that finds everything
    /// as it was (the controller's resync, a speaker's re-listing) needs no new plans.
    public var lastLoadChanged: Bool { lastChanged.load(ordering: .relaxed) }

    /// Whether objects keep their documents as written. Only output needs them (`get -o yaml`, `apply`'s
    /// comparison); a speaker at 10k services held about 2 KB of document per service for nothing.
    public let keepsDocuments: Bool

    public init(keepsDocuments: Bool = true) {
        self.keepsDocuments = keepsDocuments
    }

    /// How many records the cache holds, for tests.
    public var count: Int { entries.withLock { $0.count } }

    func startingLoad() -> Entries {
        var entries = Entries(keepsDocuments: keepsDocuments, previous: entries.withLock { $0 })
        // A load sees about what the last one saw: growing to it step by step was 4% of a controller pass.
        entries.current.reserveCapacity(entries.previous.count)
        return entries
    }

    /// Only what the last load saw is kept: deleted records leave the cache with it.
    func finishLoad(_ used: Entries) {
        entries.withLock { $0 = used.current }
        lastChanged.store(used.changed, ordering: .relaxed)
    }
}
