import Foundation
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

@Suite struct SnapshotLoadTests {
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

    /// A reload with a cache decodes only records whose revision moved: a record whose bytes were swapped
    /// under the same revision still reads as before, while a changed one and a deleted one are seen.
    @Test func aCachedReloadDecodesOnlyChangedRecords() async throws {
        let fixture = try StoreFixture()
        try await fixture.apply(["a", "b"].map { """
            apiVersion: v1
            kind: Service
            metadata: {name: \($0), namespace: team}
            spec: {type: LoadBalancer, ports: [{port: 80}]}
            """ }.joined(separator: "\n---\n"))
        let cache = SnapshotCache()
        _ = try await ClusterSnapshot.load(from: fixture.store, cache: cache)
        #expect(cache.count == 2)

        // Same revisions, unreadable bytes: only a decode would notice.
        let garbled = ValueSwappingStore(fixture.store)
        let cached = try await ClusterSnapshot.load(from: garbled, cache: cache)
        #expect(cached.problems.isEmpty)
        #expect(cached.services.map(\.resource.name) == ["a", "b"])
        let uncached = try await ClusterSnapshot.load(from: garbled)
        #expect(uncached.services.isEmpty && uncached.problems.count == 2)

        try await fixture.apply("""
            apiVersion: v1
            kind: Service
            metadata: {name: a, namespace: team}
            spec: {type: LoadBalancer, ports: [{port: 8080}]}
            """)
        try await fixture.store.delete("services/team/b")
        let reloaded = try await ClusterSnapshot.load(from: fixture.store, cache: cache)
        #expect(reloaded.services.map { $0.resource.ports.map(\.port) } == [[8080]])
        #expect(cache.count == 1)
    }
}

/// Lists every record with its value replaced by bytes that are not JSON, keeping keys and revisions.
final class ValueSwappingStore: Store {
    let base: any Store
    init(_ base: any Store) { self.base = base }

    var name: String { base.name }
    func get(_ key: String) async throws -> Record? { try await base.get(key) }
    func list(prefix: String) async throws -> Listing {
        var listing = try await base.list(prefix: prefix)
        listing.records = listing.records.map { var record = $0; record.value = Data("not json".utf8); return record }
        return listing
    }
    func commit(_ transaction: Transaction) async throws -> Revision { try await base.commit(transaction) }
    func watch(prefix: String, after: Revision) -> AsyncThrowingStream<WatchEvent, Error> { base.watch(prefix: prefix, after: after) }
    func compact(through revision: Revision) async throws { try await base.compact(through: revision) }
}
