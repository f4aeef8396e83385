import Foundation
import Logging
import Synchronization
import Testing
import VIPClient
import VIPController
import VIPFileStore
import VIPLease
import VIPModel
import VIPStore

/// A temporary store directory per test, removed afterwards.
final class StoreFixture: Sendable {
    let directory: String
    let store: FileStore

    init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("metalvip-controller-\(getpid())-\(UUID().uuidString)").path
        store = try FileStore(directory: directory)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    @discardableResult
    func apply(_ yaml: String) async throws -> ApplyResult {
        try await Applier(store: store).apply([ManifestFile(name: "test.yaml", text: yaml)])
    }

    func controller(_ identity: String = "c1", lbClass: String? = nil, leaseDuration: Duration = .seconds(3),
                    adjust: (inout Controller.Settings) -> Void = { _ in }) -> Controller {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var settings = Controller.Settings(loadBalancerClass: lbClass)
        settings.leaseDuration = leaseDuration
        adjust(&settings)
        return Controller(store: store, identity: identity, settings: settings, logger: logger)
    }

    @discardableResult
    func reconcile(lbClass: String? = nil) async throws -> ReconcilePlan {
        try await controller(lbClass: lbClass).runOnce()
    }

    func snapshot() async throws -> ClusterSnapshot { try await ClusterSnapshot.load(from: store) }

    func addresses(_ name: String, namespace: String = "default") async throws -> [String] {
        try await snapshot().assignments[ObjectKey(.service, namespace: namespace, name: name)]?.value.addresses.map(\.description) ?? []
    }

    func events(_ name: String) async throws -> [ServiceEvent] {
        try await snapshot().events[ObjectKey(.service, namespace: "default", name: name)]?.value.events ?? []
    }
}

func poolYAML(_ name: String, _ addresses: [String], extra: String = "") -> String {
    """
    apiVersion: metallb.io/v1beta1
    kind: IPAddressPool
    metadata: {name: \(name), namespace: metallb-system}
    spec:
      addresses: [\(addresses.joined(separator: ", "))]
    \(extra)
    """
}

func serviceYAML(_ name: String, type: String = "LoadBalancer", annotations: [String: String] = [:],
                 ports: [Int] = [80], extra: String = "") -> String {
    let annotationText = annotations.isEmpty ? "" :
        "\n  annotations:\n" + annotations.sorted { $0.key < $1.key }.map { "    \($0.key): \"\($0.value)\"" }.joined(separator: "\n")
    return """
    apiVersion: v1
    kind: Service
    metadata:
      name: \(name)\(annotationText)
    spec:
      type: \(type)
      ports: [\(ports.map { "{port: \($0)}" }.joined(separator: ", "))]
    \(extra)
    """
}

extension StoreFixture {
    /// One IPv6 pool (only 2001:db8::/32 holds thousands) and `count` LoadBalancer services `s0`...: `s0` is
    /// applied, the rest are copies of its stored document under other names, written 1000 to a transaction
    /// (a 20k-document apply is what this test is not about, and is slow in a debug build).
    func storeManyServices(_ count: Int) async throws {
        try await apply(poolYAML("big", ["2001:db8:1::/112"]) + "---\n" + serviceYAML("s0", extra: "  ipFamilies: [IPv6]"))
        let first = try #require(try await store.get(Keyspace.key(of: ObjectKey(.service, namespace: "default", name: "s0"))))
        var document = try RecordCoding.decode(Value.self, from: first.value)
        var operations: [StoreOperation] = []
        for index in 1..<count {
            document["metadata"]?["name"] = .string("s\(index)")
            operations.append(.put(key: Keyspace.key(of: ObjectKey(.service, namespace: "default", name: "s\(index)")),
                                   value: try RecordCoding.encode(document)))
            if operations.count == 1_000 || index == count - 1 {
                try await store.commit(Transaction(operations: operations))
                operations.removeAll()
            }
        }
    }
}

/// A store whose commits of anything but the lease take `delay`: batches long enough for renewals to
/// land while they are in flight.
final class SlowCommitStore: Store {
    let inner: any Store
    let delay: Duration
    let leaseKey: String

    init(_ inner: any Store, delay: Duration, leaseKey: String = Keyspace.controllerLease) {
        self.inner = inner
        self.delay = delay
        self.leaseKey = leaseKey
    }

    var name: String { inner.name }
    func get(_ key: String) async throws -> Record? { try await inner.get(key) }
    func list(prefix: String) async throws -> Listing { try await inner.list(prefix: prefix) }
    func commit(_ transaction: Transaction) async throws -> Revision {
        if transaction.operations.contains(where: { $0.key != leaseKey }) { try await Task.sleep(for: delay) }
        return try await inner.commit(transaction)
    }
    func watch(prefix: String, after: Revision) -> AsyncThrowingStream<WatchEvent, Error> { inner.watch(prefix: prefix, after: after) }
    func compact(through revision: Revision) async throws { try await inner.compact(through: revision) }
}

/// Records the controller's writes as they land, and how many were in flight at once. Each takes a round
/// trip, as to etcd, so the next may start meanwhile if it is allowed to; deletes take longer (20 ms against
/// 5), so a put sent together with one lands first.
final class LandingOrderStore: Store {
    let inner: any Store
    let landed = Mutex<[StoreOperation]>([])
    let inFlight = Mutex((now: 0, most: 0))

    init(_ inner: any Store) { self.inner = inner }

    var name: String { inner.name }
    func get(_ key: String) async throws -> Record? { try await inner.get(key) }
    func list(prefix: String) async throws -> Listing { try await inner.list(prefix: prefix) }
    func commit(_ transaction: Transaction) async throws -> Revision {
        guard transaction.operations.contains(where: { !$0.key.hasPrefix("leases/") }) else { return try await inner.commit(transaction) }
        inFlight.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
        defer { inFlight.withLock { $0.now -= 1 } }
        let deletes = transaction.operations.contains { if case .delete = $0 { true } else { false } }
        try await Task.sleep(for: .milliseconds(deletes ? 20 : 5))
        let revision = try await inner.commit(transaction)
        landed.withLock { $0 += transaction.operations }
        return revision
    }
    func watch(prefix: String, after: Revision) -> AsyncThrowingStream<WatchEvent, Error> { inner.watch(prefix: prefix, after: after) }
    func compact(through revision: Revision) async throws { try await inner.compact(through: revision) }
}

/// Counts writes of the controller lease while it lives, from a watch.
final class LeaseWriteCounter: Sendable {
    private let task: Task<Int, Never>

    init(store: any Store, after: Revision) {
        task = Task {
            var writes = 0
            do {
                for try await event in store.watch(prefix: Keyspace.controllerLease, after: after) {
                    if case .put = event { writes += 1 }
                }
            } catch {}
            return writes
        }
    }

    func stop() async -> Int {
        task.cancel()
        return await task.value
    }
}

@Suite struct ControllerTests {
    @Test func examplesGetTheExpectedAddresses() async throws {
        let fixture = try StoreFixture()
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let files = try ["pools.yaml", "services.yaml"].map { name in
            let path = root.appendingPathComponent("Config/examples/\(name)").path
            return ManifestFile(name: path, text: try String(contentsOfFile: path, encoding: .utf8))
        }
        let result = try await Applier(store: fixture.store).apply(files)
        #expect(result.lines.contains("skipped deployment.apps/web (not handled)"))
        #expect(result.lines.contains("ipaddresspool.metallb.io/lan created"))
        try await fixture.reconcile()
        // One apply is one revision: services created together go in namespace and name order.
        #expect(try await fixture.addresses("dual") == ["192.0.2.10", "2001:db8::10"])
        #expect(try await fixture.addresses("web") == ["192.0.2.11"])
        #expect(try await fixture.addresses("web-tls") == ["192.0.2.11"], "same sharing key, other port: shared")
        #expect(try await fixture.addresses("dns") == ["192.0.2.203"])
        #expect(try await fixture.addresses("api", namespace: "team-a") == ["198.51.100.1"], "pinned pool, .0 avoided")
        #expect(try await fixture.addresses("internal") == [])

        // A second pass over the same state changes nothing.
        #expect(try await fixture.reconcile().writes.isEmpty)
        // Re-applying the same files is "unchanged" and writes nothing.
        let again = try await Applier(store: fixture.store).apply(files)
        #expect(again.revision == nil)
        #expect(again.lines.contains("service/web unchanged"))
    }

    @Test func assignmentsSurviveRestartsAndReloads() async throws {
        let fixture = try StoreFixture()
        try await fixture.apply(poolYAML("a", ["192.0.2.0/28"]) + "---\n" + serviceYAML("one") + "---\n" + serviceYAML("two"))
        try await fixture.reconcile()
        #expect(try await fixture.addresses("two") == ["192.0.2.1"])
        // Delete "one", then reload the pool under a new name and grown: "two" stays where it is.
        _ = try await Applier(store: fixture.store).delete([ObjectKey(.service, namespace: "default", name: "one")])
        _ = try await Applier(store: fixture.store).delete([ObjectKey(.ipAddressPool, namespace: "metallb-system", name: "a")])
        try await fixture.apply(poolYAML("renamed", ["192.0.2.0/27"]))
        try await fixture.reconcile()
        #expect(try await fixture.addresses("two") == ["192.0.2.1"])
        #expect(try await fixture.addresses("one") == [])
        let view = ClusterView(snapshot: try await fixture.snapshot())
        #expect(view.poolName(of: ObjectKey(.service, namespace: "default", name: "two")) == "renamed")
    }

    @Test func shrinkingAPoolPastAnAddressMovesItWithAnEvent() async throws {
        let fixture = try StoreFixture()
        try await fixture.apply(poolYAML("a", ["192.0.2.0/28"]) + "---\n"
                                + serviceYAML("s", annotations: ["metallb.io/loadBalancerIPs": "192.0.2.9"]) + "---\n" + serviceYAML("t"))
        try await fixture.reconcile()
        try await fixture.apply(serviceYAML("s"))  // stops asking for .9; keeps it, as it still fits
        try await fixture.reconcile()
        #expect(try await fixture.addresses("s") == ["192.0.2.9"])
        try await fixture.apply(poolYAML("a", ["192.0.2.0/29"]))
        try await fixture.reconcile()
        #expect(try await fixture.addresses("s") == ["192.0.2.1"])
        let reasons = try await fixture.events("s").map(\.reason)
        #expect(reasons == [.ipAllocated, .clearAssignment, .ipAllocated])
        #expect(try await fixture.events("s")[1].message.contains("192.0.2.9 is not in any address pool"))
    }

    @Test func pendingServicesGetAFailureEventAndAreRetried() async throws {
        let fixture = try StoreFixture()
        try await fixture.apply(poolYAML("tiny", ["192.0.2.1"]) + "---\n" + serviceYAML("first") + "---\n" + serviceYAML("second"))
        try await fixture.reconcile()
        #expect(try await fixture.addresses("first") == ["192.0.2.1"])
        #expect(try await fixture.addresses("second") == [])
        let failed = try #require(try await fixture.events("second").last)
        #expect(failed.reason == .allocationFailed)
        #expect(failed.message.contains("pool \"tiny\" has no free IPv4 address"))
        // The same failure again writes nothing new.
        #expect(try await fixture.reconcile().writes.isEmpty)
        // Turning "first" into a ClusterIP frees the address; "second" gets it in the same pass.
        try await fixture.apply(serviceYAML("first", type: "ClusterIP"))
        try await fixture.reconcile()
        #expect(try await fixture.addresses("first") == [])
        #expect(try await fixture.addresses("second") == ["192.0.2.1"])
        #expect(try await fixture.events("first").last?.reason == .clearAssignment)
    }

    @Test func exactReasonsForRequestsThatCannotBeMet() async throws {
        let fixture = try StoreFixture()
        try await fixture.apply(poolYAML("a", ["192.0.2.0/28"]) + "---\n"
            + serviceYAML("outside", annotations: ["metallb.io/loadBalancerIPs": "203.0.113.5"]) + "---\n"
            + serviceYAML("nopool", annotations: ["metallb.io/address-pool": "gold"]) + "---\n"
            + serviceYAML("six", extra: "  ipFamilies: [IPv6]"))
        try await fixture.reconcile()
        #expect(try await fixture.events("outside").last?.message.hasSuffix("203.0.113.5 is not in any address pool") == true)
        #expect(try await fixture.events("nopool").last?.message.hasSuffix("unknown pool \"gold\"") == true)
        #expect(try await fixture.events("six").last?.message.hasSuffix("pool \"a\" has no IPv6 addresses") == true)
    }

    @Test func loadBalancerClassSelectsServices() async throws {
        let fixture = try StoreFixture()
        try await fixture.apply(poolYAML("a", ["192.0.2.0/28"]) + "---\n" + serviceYAML("plain") + "---\n"
                                + serviceYAML("classy", extra: "  loadBalancerClass: metalvip.io/lb"))
        try await fixture.reconcile(lbClass: "metalvip.io/lb")
        #expect(try await fixture.addresses("plain") == [])
        #expect(try await fixture.addresses("classy") == ["192.0.2.0"])
        try await fixture.reconcile()
        #expect(try await fixture.addresses("plain") == ["192.0.2.1"])
    }

    @Test func onlyTheLeaseHolderActs() async throws {
        let fixture = try StoreFixture()
        try await fixture.apply(poolYAML("a", ["192.0.2.0/28"]) + "---\n" + serviceYAML("s"))
        // Long leases: a busy test machine must not let the leader's lease lapse mid-test.
        let leader = fixture.controller("leader", leaseDuration: .seconds(60))
        #expect(await leader.lease.refresh())
        let standby = fixture.controller("standby", leaseDuration: .seconds(60))
        #expect(!(await standby.lease.refresh()))
        await #expect(throws: ControllerError.self) { try await standby.runOnce(timeout: .milliseconds(300)) }
        #expect(try await fixture.addresses("s") == [])
        // A release hands over at once, without waiting for expiry.
        await leader.lease.release()
        _ = try await standby.runOnce(timeout: .milliseconds(300))
        #expect(try await fixture.addresses("s") == ["192.0.2.0"])
    }

    @Test func aDeposedLeadersWritesAreRefused() async throws {
        let fixture = try StoreFixture()
        try await fixture.apply(poolYAML("a", ["192.0.2.0/28"]) + "---\n" + serviceYAML("s"))
        let old = fixture.controller("old")
        #expect(await old.lease.refresh())
        let fence = try #require(await old.lease.fence())
        // Someone else takes the lease (say, after old was paused past its deadline).
        let stolen = try RecordCoding.encode(LeaseRecord(holder: "new", durationMilliseconds: 60_000, acquireTime: "t", renewTime: "t", transitions: 1))
        try await fixture.store.put(Keyspace.controllerLease, stolen)
        await #expect(throws: StoreError.self) {
            try await fixture.store.commit(Transaction(conditions: [fence],
                                                       operations: [.put(key: "assignments/default/s", value: Data("{}".utf8))]))
        }
        // Through the lease, the same late write says leadership is gone, and the lease knows it.
        do {
            try await old.lease.commit(together: [Transaction(operations: [.put(key: "assignments/default/s", value: Data("{}".utf8))])])
            Issue.record("a deposed leader's write was accepted")
        } catch ControllerError.deposed {
        } catch {
            Issue.record("expected ControllerError.deposed, got \(error)")
        }
        #expect(!(await old.lease.isLeader))
        #expect(try await fixture.store.get("assignments/default/s") == nil)
    }

    @Test func aOnceReconcileOf20kServicesRenewsItsLeaseThroughout() async throws {
        let fixture = try StoreFixture()
        try await fixture.storeManyServices(20_000)
        let controller = fixture.controller(leaseDuration: .milliseconds(300)) { $0.renewInterval = .milliseconds(75) }
        let counter = LeaseWriteCounter(store: fixture.store, after: try await fixture.store.list(prefix: "leases/").revision)
        let plan = try await controller.runOnce()
        let writes = await counter.stop()
        #expect(plan.assignments.count == 20_000)
        #expect(try await fixture.snapshot().assignments.count == 20_000)
        // Acquire, release, and renewals between: the pass outlived the 300 ms lease several times over.
        #expect(writes >= 5, "only \(writes) lease writes: the pass did not run across renewals")
    }

    @Test func renewalsDuringInFlightBatchesNeverFailThePass() async throws {
        let fixture = try StoreFixture()
        try await fixture.storeManyServices(500)
        // Each batch of 25 takes 40 ms; the lease is renewed every 10 ms meanwhile, as often as it can be.
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var settings = Controller.Settings()
        settings.leaseDuration = .seconds(2)
        settings.batchSize = 25
        let controller = Controller(store: SlowCommitStore(fixture.store, delay: .milliseconds(40)), identity: "c1",
                                    settings: settings, logger: logger)
        #expect(await controller.lease.refresh())
        let counter = LeaseWriteCounter(store: fixture.store, after: try await fixture.store.list(prefix: "leases/").revision)
        let renewing = Task {
            var renewed = 0
            while !Task.isCancelled, renewed < 2_000 {
                if await controller.lease.refresh() { renewed += 1 }
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        let plan = try await controller.reconcile(maxAttempts: 1)
        renewing.cancel()
        await renewing.value
        #expect(plan.assignments.count == 500)
        #expect(try await fixture.snapshot().assignments.count == 500)
        #expect(await counter.stop() >= 10, "renewals landed between the batches")
    }

    /// A plan's chunks go a few at once (on etcd each waits a round trip), but the assignments of deleted
    /// services are gone before any other write lands: their addresses go to new services in the same plan.
    @Test func chunksGoAFewAtOnceAndFreedAddressesMoveOnlyAfterTheirRelease() async throws {
        let fixture = try StoreFixture()
        try await fixture.apply([poolYAML("a", ["192.0.2.0/30"]), serviceYAML("s1"), serviceYAML("s2"), serviceYAML("s3"),
                                 serviceYAML("s4")].joined(separator: "\n---\n"))
        try await fixture.reconcile()
        let gone = ["s1", "s2"].map { ObjectKey(.service, namespace: "default", name: $0) }
        var freed: Set<String> = []
        for service in gone { freed.formUnion(try await fixture.addresses(service.name)) }
        try #require(freed.count == 2)
        try await fixture.store.commit(Transaction(operations: gone.map { .delete(key: Keyspace.key(of: $0)) }))
        try await fixture.apply(serviceYAML("t1") + "\n---\n" + serviceYAML("t2"))

        let store = LandingOrderStore(fixture.store)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var settings = Controller.Settings()
        settings.batchSize = 1
        _ = try await Controller(store: store, identity: "c1", settings: settings, logger: logger).runOnce()

        #expect(Set(try await fixture.addresses("t1") + fixture.addresses("t2")) == freed)
        let landed = store.landed.withLock { $0 }
        let releases = gone.map { Keyspace.assignment(of: $0) }
        let lastRelease = try #require(landed.lastIndex { releases.contains($0.key) })
        let firstPut = try #require(landed.firstIndex { if case .put = $0 { true } else { false } })
        #expect(lastRelease < firstPut, "landed: \(landed.map(\.key))")
        #expect(store.inFlight.withLock { $0.most } > 1, "one chunk at a time")
        #expect(store.inFlight.withLock { $0.most } <= TransactionBatches.inFlight)
    }

    @Test func theControllerLoopReactsToChanges() async throws {
        let fixture = try StoreFixture()
        try await fixture.apply(poolYAML("a", ["192.0.2.0/28"]))
        let controller = fixture.controller()
        let running = Task { try await controller.run() }
        defer { running.cancel() }
        try await fixture.apply(serviceYAML("live"))
        var got: [String] = []
        for _ in 0..<100 where got.isEmpty {
            try await Task.sleep(for: .milliseconds(50))
            got = try await fixture.addresses("live")
        }
        #expect(got == ["192.0.2.0"])
        running.cancel()
        _ = try? await running.value
        // Cancelled: the lease is released for the next controller.
        let lease = try #require(try await fixture.store.get(Keyspace.controllerLease))
        #expect(try RecordCoding.decode(LeaseRecord.self, from: lease.value).holder == "")
    }

    @Test func theLeaderCompactsHistoryOlderThanTheRetention() async throws {
        let fixture = try StoreFixture()
        let first = try await fixture.store.put("scratch/a", Data("1".utf8))
        try await fixture.store.delete("scratch/a")
        let controller = fixture.controller { $0.historyRetention = .milliseconds(500) }
        let running = Task { try await controller.run() }
        defer { running.cancel() }
        // Bounded: the first compaction comes after one retention plus one tick; wait up to 10 retentions.
        var compacted = false
        for _ in 0..<50 where !compacted {
            try await Task.sleep(for: .milliseconds(100))
            var iterator = fixture.store.watch(prefix: "scratch/", after: first - 1).makeAsyncIterator()
            do {
                _ = try await iterator.next()
            } catch StoreError.compacted {
                compacted = true
            }
        }
        #expect(compacted, "history older than the retention was compacted")
    }

    @Test func theLeaderDeletesNodeLeasesThatStoppedChangingAndKeepsLiveOnes() async throws {
        let fixture = try StoreFixture()
        try await fixture.store.put(Keyspace.nodeLease("gone"), Data("{}".utf8))
        try await fixture.store.put(Keyspace.nodeLease("alive"), Data("{}".utf8))
        let controller = fixture.controller { $0.deadNodeRetention = .milliseconds(600) }
        let running = Task { try await controller.run() }
        defer { running.cancel() }
        // Bounded: "alive" renews every 100 ms for up to 3 s; "gone" must go within that time.
        var goneAt: Int?
        for tick in 0..<30 {
            try await fixture.store.put(Keyspace.nodeLease("alive"), Data("{\"tick\": \(tick)}".utf8))
            try await Task.sleep(for: .milliseconds(100))
            if goneAt == nil, try await fixture.store.get(Keyspace.nodeLease("gone")) == nil { goneAt = tick }
            if let goneAt, tick > goneAt + 8 { break }
        }
        let tick = try #require(goneAt, "the stale node lease was never deleted")
        #expect(tick >= 5, "not before it was unchanged for the retention (600 ms)")
        #expect(try await fixture.store.get(Keyspace.nodeLease("alive")) != nil, "a renewing node keeps its lease")
    }
}
