import Foundation
import Synchronization
import Testing
import VIPClient
import VIPFileStore
import VIPModel
import VIPStore

/// A store that takes one operation per transaction (as a tiny etcd `--max-txn-ops` would) and records the
/// order keys were written in.
final class OneOperationStore: Store {
    let base: FileStore
    let written = Mutex<[String]>([])
    /// Commits under way now, and the most there ever were at once.
    let inFlight = Mutex((now: 0, most: 0))

    init(_ base: FileStore) { self.base = base }

    var name: String { base.name }
    var maxOperationsPerTransaction: Int { 1 }
    func get(_ key: String) async throws -> Record? { try await base.get(key) }
    func list(prefix: String) async throws -> Listing { try await base.list(prefix: prefix) }
    func commit(_ transaction: Transaction) async throws -> Revision {
        written.withLock { $0 += transaction.operations.map(\.key) }
        inFlight.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
        defer { inFlight.withLock { $0.now -= 1 } }
        // A round trip, as to etcd: long enough for the next commit to start meanwhile, if it may.
        try await Task.sleep(for: .milliseconds(5))
        return try await base.commit(transaction)
    }
    func watch(prefix: String, after: Revision) -> AsyncThrowingStream<WatchEvent, Error> { base.watch(prefix: prefix, after: after) }
    func compact(through revision: Revision) async throws { try await base.compact(through: revision) }
    func ping() async throws { try await base.ping() }
}

@Suite struct ApplierOrderTests {
    /// An apply split over several transactions never lands an EndpointSlice before its service, whatever the
    /// file order; the printed lines keep the file's order.
    @Test func backendsAreWrittenAfterServices() async throws {
        let fixture = try StoreFixture()
        let store = OneOperationStore(fixture.store)
        let result = try await Applier(store: store).apply([ManifestFile(name: "export.yaml", text: """
            apiVersion: v1
            kind: List
            items:
            - apiVersion: discovery.k8s.io/v1
              kind: EndpointSlice
              metadata: {name: web-abc, labels: {kubernetes.io/service-name: web}}
              addressType: IPv4
              endpoints: [{addresses: [192.0.2.2]}]
            - apiVersion: v1
              kind: Endpoints
              metadata: {name: web}
            - apiVersion: v1
              kind: Service
              metadata: {name: web}
              spec: {type: LoadBalancer}
            - apiVersion: v1
              kind: Namespace
              metadata: {name: shop}
            """)])
        #expect(result.lines == ["endpointslice.discovery.k8s.io/web-abc created", "endpoints/web created", "service/web created",
                                 "namespace/shop created"])
        let written = store.written.withLock { $0 }
        #expect(written.count == 4)
        #expect(Array(written.prefix(2)) == ["namespaces/shop", "services/default/web"])
        // EndpointSlices and Endpoints are one stage (`Kind.applyOrder` 4), sent together: either may land first.
        #expect(Set(written.dropFirst(2)) == ["endpointslices/default/web-abc", "endpoints/default/web"])
        let snapshot = try await ClusterSnapshot.load(from: fixture.store)
        #expect(snapshot.backendSlices(of: ObjectKey(.service, namespace: "default", name: "web")).map(\.name) == ["web-abc"])
    }

    /// Split transactions of one kind go several at once (each waits a round trip on etcd), but no
    /// EndpointSlice is written before every service is.
    @Test func transactionsOfOneKindGoTogetherAndKindsStayInOrder() async throws {
        let fixture = try StoreFixture()
        let store = OneOperationStore(fixture.store)
        var yaml = ""
        for index in 0..<6 {
            yaml += """
                ---
                apiVersion: discovery.k8s.io/v1
                kind: EndpointSlice
                metadata: {name: web\(index)-abc, labels: {kubernetes.io/service-name: web\(index)}}
                addressType: IPv4
                endpoints: [{addresses: [192.0.2.\(index + 2)]}]
                ---
                apiVersion: v1
                kind: Service
                metadata: {name: web\(index)}
                spec: {type: LoadBalancer}

                """
        }
        let result = try await Applier(store: store).apply([ManifestFile(name: "many.yaml", text: yaml)])
        #expect(result.lines.count == 12)
        let written = store.written.withLock { $0 }
        #expect(written.count == 12)
        let lastService = try #require(written.lastIndex { $0.hasPrefix("services/") })
        let firstSlice = try #require(written.firstIndex { $0.hasPrefix("endpointslices/") })
        #expect(lastService < firstSlice, "written in order: \(written)")
        #expect(store.inFlight.withLock { $0.most } > 1, "one transaction at a time")
        #expect(store.inFlight.withLock { $0.most } <= 4)
    }
}
