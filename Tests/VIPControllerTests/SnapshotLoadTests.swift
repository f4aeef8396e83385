import Synchronization
import Testing
import VIPModel
import VIPStore

/// A store that records which prefixes were listed, to tell a point read from a full list.
final class ListingRecorder: Store {
    let base: any Store
    let listed = Mutex<[String]>([])

    init(_ base: any Store) { self.base = base }

    var name: String { base.name }
    func get(_ key: String) async throws -> Record? { try await base.get(key) }
    func list(prefix: String) async throws -> Listing {
        listed.withLock { $0.append(prefix) }
        return try await base.list(prefix: prefix)
    }
    func commit(_ transaction: Transaction) async throws -> Revision { try await base.commit(transaction) }
    func watch(prefix: String, after: Revision) -> AsyncThrowingStream<WatchEvent, Error> { base.watch(prefix: prefix, after: after) }
    func compact(through revision: Revision) async throws { try await base.compact(through: revision) }
}

@Suite struct SnapshotPointReadTests {
    /// `get services NAME` reads the named services and their assignments one by one, and lists only the pools.
    @Test func namedServicesAreReadWithoutListingServices() async throws {
        let fixture = try StoreFixture()
        try await fixture.apply("""
            apiVersion: metallb.io/v1beta1
            kind: IPAddressPool
            metadata: {name: lan, namespace: metallb-system}
            spec: {addresses: [192.0.2.10-192.0.2.20]}
            """ + ["a", "b", "c"].map { """

            ---
            apiVersion: v1
            kind: Service
            metadata: {name: \($0), namespace: team}
            spec: {type: LoadBalancer, ports: [{port: 80}]}
            """ }.joined())
        let b = ObjectKey(.service, namespace: "team", name: "b")
        try await fixture.store.put(Keyspace.assignment(of: b),
                                    try RecordCoding.encode(ServiceAssignment(addresses: [IPAddress("192.0.2.12")!])))
        let store = ListingRecorder(fixture.store)

        let missing = ObjectKey(.service, namespace: "team", name: "nope")
        let snapshot = try await ClusterSnapshot.load(from: store, objects: [b, missing])

        #expect(snapshot.services.map(\.resource.key) == [b])
        #expect(snapshot.assignments[b]?.value.addresses == [IPAddress("192.0.2.12")!])
        #expect(snapshot.pools.map(\.resource.name) == ["lan"])
        #expect(store.listed.withLock { $0 } == [Keyspace.prefix(of: .ipAddressPool)])
    }
}
