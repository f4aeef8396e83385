import Foundation
import Synchronization
import Testing
import VIPModel
import VIPStore

/// A store that records which prefixes were listed and watched, to tell a point read from a full list; its
/// watches never deliver events under the `deaf` prefixes (a controller's view then learns of those
/// records only from its own writes, or from a fresh listing).
final class ListingRecorder: Store {
    let base: any Store
    let deaf: [String]
    let listed = Mutex<[String]>([])
    let watched = Mutex<Set<String>>([])

    init(_ base: any Store, deaf: [String] = []) {
        self.base = base
        self.deaf = deaf
    }

    var name: String { base.name }
    func get(_ key: String) async throws -> Record? { try await base.get(key) }
    func list(prefix: String) async throws -> Listing {
        listed.withLock { $0.append(prefix) }
        return try await base.list(prefix: prefix)
    }
    func commit(_ transaction: Transaction) async throws -> Revision { try await base.commit(transaction) }
    func watch(prefix: String, after: Revision) -> AsyncThrowingStream<WatchEvent, Error> {
        watched.withLock { _ = $0.insert(prefix) }
        let events = base.watch(prefix: prefix, after: after)
        guard !deaf.isEmpty else { return events }
        let deaf = deaf
        return AsyncThrowingStream { continuation in
            let forwarding = Task {
                do {
                    for try await event in events where !deaf.contains(where: { event.key.hasPrefix($0) }) {
                        continuation.yield(event)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in forwarding.cancel() }
        }
    }
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

    /// Speakers and controllers read objects, never print them: their cache keeps no documents.
    @Test func aCacheWithoutDocumentsKeepsTheObjects() async throws {
        let fixture = try StoreFixture()
        try await fixture.apply("""
            apiVersion: v1
            kind: Service
            metadata: {name: a, namespace: team, labels: {app: web}}
            spec: {type: LoadBalancer, ports: [{port: 80}]}
            """)
        let lean = try await ClusterSnapshot.load(from: fixture.store, cache: SnapshotCache(keepsDocuments: false))
        let full = try await ClusterSnapshot.load(from: fixture.store, cache: SnapshotCache())
        #expect(lean.services.map(\.resource) == full.services.map(\.resource))
        #expect(lean.services.first?.resource.meta.labels == ["app": "web"])
        #expect(lean.services.first?.document == .null)
        #expect(full.services.first?.document["metadata"]?["name"] == .string("a"))
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

/// A speaker's snapshot comes from a mirror: one listing per prefix, then the watch. It must be the
/// snapshot a full load gives, whatever order and repetition the events come in.
@Suite struct RecordMirrorTests {
    static let pools = """
        apiVersion: metallb.io/v1beta1
        kind: IPAddressPool
        metadata: {name: lan, namespace: metallb-system}
        spec: {addresses: [192.0.2.10-192.0.2.20]}
        ---
        apiVersion: metallb.io/v1beta1
        kind: IPAddressPool
        metadata: {name: dmz, namespace: metallb-system}
        spec: {addresses: [198.51.100.10-198.51.100.20]}
        ---
        apiVersion: metallb.io/v1beta1
        kind: L2Advertisement
        metadata: {name: all, namespace: metallb-system}
        ---
        apiVersion: metallb.io/v1beta1
        kind: L2Advertisement
        metadata: {name: all, namespace: a-first}
        """

    static func service(_ name: String, port: Int) -> String {
        """

        ---
        apiVersion: v1
        kind: Service
        metadata: {name: \(name), namespace: team}
        spec: {type: LoadBalancer, ports: [{port: \(port)}]}
        """
    }

    static func mirror(of store: any Store) async throws -> RecordMirror {
        var mirror = RecordMirror(prefixes: Kind.allCases.map(Keyspace.prefix(of:)) + [Keyspace.assignmentsPrefix])
        for prefix in mirror.prefixes {
            #expect(!mirror.isComplete)
            mirror.replace(prefix: prefix, with: try await store.list(prefix: prefix))
        }
        #expect(mirror.isComplete)
        return mirror
    }

    /// What two snapshots must agree on: every object in order, with its revision, and every assignment.
    static func summary(_ snapshot: ClusterSnapshot) -> [String] {
        snapshot.pools.map { "pool \($0.resource.meta.namespace)/\($0.resource.name) @\($0.record.modRevision)" }
            + snapshot.advertisements.map { "advertisement \($0.resource.meta.namespace)/\($0.resource.name) @\($0.record.modRevision)" }
            + snapshot.services.map { "service \($0.resource.key.namespacedName) \($0.resource.ports.map(\.port)) @\($0.record.modRevision)" }
            + snapshot.assignments.sorted { $0.key.namespacedName < $1.key.namespacedName }
                .map { "assignment \($0.key.namespacedName) \($0.value.value.addresses) @\($0.value.record.modRevision)" }
            + snapshot.problems
    }

    @Test func aListingThenTheWatchAssemblesWhatAFullLoadReads() async throws {
        let fixture = try StoreFixture()
        try await fixture.apply(Self.pools + Self.service("a", port: 80) + Self.service("b", port: 80))
        var mirror = try await Self.mirror(of: fixture.store)
        let initial = ClusterSnapshot.assemble(from: mirror)
        #expect(Self.summary(initial) == Self.summary(try await ClusterSnapshot.load(from: fixture.store, events: false)))
        #expect(initial.advertisements.map(\.resource.meta.namespace) == ["a-first", "metallb-system"])

        try await fixture.apply(Self.service("a", port: 8080) + Self.service("c", port: 80))
        try await fixture.store.delete("services/team/b")
        let a = ObjectKey(.service, namespace: "team", name: "a")
        try await fixture.store.put(Keyspace.assignment(of: a),
                                    try RecordCoding.encode(ServiceAssignment(addresses: [IPAddress("192.0.2.12")!])))
        try await fixture.store.put("events/team/a", Data("{}".utf8))  // not mirrored
        let last = try await fixture.store.list(prefix: "").revision

        // The watch from the start: replays what the listing holds, then the changes.
        var events: [WatchEvent] = []
        for try await event in fixture.store.watch(prefix: "", after: 0) {
            events.append(event)
            if event.revision >= last { break }
        }
        var changed = 0
        for event in events where mirror.apply(event) { changed += 1 }
        #expect(changed == 4, "a, c, the delete of b and the assignment; not the replays nor the event record")
        #expect(mirror.revision == last - 1, "the event record, last, is not mirrored")
        let assembled = ClusterSnapshot.assemble(from: mirror)
        #expect(Self.summary(assembled) == Self.summary(try await ClusterSnapshot.load(from: fixture.store, events: false)))
        #expect(assembled.services.map(\.resource.name) == ["a", "c"])

        // Everything again: nothing is newer than what the mirror holds.
        for event in events {
            let changed = mirror.apply(event)
            #expect(!changed)
        }
    }

    @Test func olderEventsNeverUndoNewerRecords() {
        var mirror = RecordMirror(prefixes: ["a/", "a/b/"])
        func apply(_ event: WatchEvent) -> Bool { mirror.apply(event) }
        func put(_ key: String, _ revision: Revision) -> WatchEvent {
            .put(Record(key: key, value: Data(), createRevision: 1, modRevision: revision))
        }
        mirror.replace(prefix: "a/", with: Listing(records: [], revision: 10))
        #expect(!mirror.isComplete)
        mirror.replace(prefix: "a/b/", with: Listing(records: [Record(key: "a/b/x", value: Data(), createRevision: 1, modRevision: 9)], revision: 10))
        #expect(mirror.isComplete && mirror.count == 1)

        #expect(!apply(put("a/b/x", 9)))
        #expect(!apply(.delete(key: "a/b/x", revision: 8)), "a delete before the record was written")
        #expect(apply(put("a/b/x", 11)))
        #expect(apply(put("a/y", 12)))
        #expect(mirror.records(under: "a/b/").map(\.key) == ["a/b/x"], "the longest prefix holds it")
        #expect(mirror.records(under: "a/").map(\.key) == ["a/y"])
        #expect(!apply(put("z", 13)), "no mirrored prefix")
        #expect(apply(.delete(key: "a/b/x", revision: 14)))
        #expect(!apply(.delete(key: "a/b/x", revision: 15)), "already gone")
        #expect(mirror.count == 1 && mirror.revision == 15)
    }

    /// A writer's own commit goes in ahead of its echo, which then changes nothing; it keeps the key's
    /// creation, and never undoes what the watch already brought that is newer.
    @Test func ownWritesFoldInAheadOfTheirEcho() {
        var mirror = RecordMirror(prefixes: ["a/"])
        func fold(_ operation: StoreOperation, _ revision: Revision) -> Bool { mirror.fold(operation, committedAt: revision) }
        func apply(_ event: WatchEvent) -> Bool { mirror.apply(event) }
        mirror.replace(prefix: "a/", with: Listing(records: [Record(key: "a/x", value: Data("1".utf8), createRevision: 3, modRevision: 5)],
                                                   revision: 10))
        #expect(fold(.put(key: "a/x", value: Data("2".utf8)), 11))
        #expect(fold(.put(key: "a/new", value: Data("3".utf8)), 11))
        let held = Dictionary(uniqueKeysWithValues: mirror.records(under: "a/").map { ($0.key, $0) })
        #expect(held["a/x"] == Record(key: "a/x", value: Data("2".utf8), createRevision: 3, modRevision: 11))
        #expect(held["a/new"] == Record(key: "a/new", value: Data("3".utf8), createRevision: 11, modRevision: 11))
        #expect(!apply(.put(Record(key: "a/x", value: Data("2".utf8), createRevision: 3, modRevision: 11))), "the echo")

        #expect(apply(.put(Record(key: "a/x", value: Data("4".utf8), createRevision: 3, modRevision: 13))))
        #expect(!fold(.put(key: "a/x", value: Data("2".utf8)), 12), "answered after a newer write came")
        #expect(!fold(.delete(key: "a/x"), 12))
        #expect(fold(.delete(key: "a/new"), 14))
        #expect(mirror.records(under: "a/").map(\.value) == [Data("4".utf8)])
        #expect(!fold(.put(key: "b/y", value: Data()), 15), "no mirrored prefix")
    }
}
