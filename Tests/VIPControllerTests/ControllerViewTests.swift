import Foundation
import Logging
import Synchronization
import Testing
@testable import VIPController
import VIPModel
import VIPStore

/// Holds each listing of `held` after reading it, until `release()`: a write can land between the read and
/// the view installing what was read.
final class HeldListingStore: Store {
    let inner: any Store
    let held: String
    private let gate = Mutex<(reading: Bool, waiters: [CheckedContinuation<Void, Never>], open: Bool)>((false, [], false))

    init(_ inner: any Store, holding held: String) {
        self.inner = inner
        self.held = held
    }

    var name: String { inner.name }
    var isHolding: Bool { gate.withLock { $0.reading } }
    func release() {
        let waiters = gate.withLock { gate in
            gate.open = true
            defer { gate.waiters = [] }
            return gate.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
    func get(_ key: String) async throws -> Record? { try await inner.get(key) }
    func list(prefix: String) async throws -> Listing {
        let listing = try await inner.list(prefix: prefix)
        guard prefix == held else { return listing }
        await withCheckedContinuation { continuation in
            let open = gate.withLock { gate in
                gate.reading = true
                if !gate.open { gate.waiters.append(continuation) }
                return gate.open
            }
            if open { continuation.resume() }
        }
        return listing
    }
    func commit(_ transaction: Transaction) async throws -> Revision { try await inner.commit(transaction) }
    func watch(prefix: String, after: Revision) -> AsyncThrowingStream<WatchEvent, Error> { inner.watch(prefix: prefix, after: after) }
    func compact(through revision: Revision) async throws { try await inner.compact(through: revision) }
}

@Suite struct ControllerViewTests {
    /// A controller running on `store` until the task is cancelled.
    func startController(on store: any Store, adjust: (inout Controller.Settings) -> Void = { _ in }) -> Task<Void, any Error> {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var settings = Controller.Settings()
        adjust(&settings)
        let controller = Controller(store: store, identity: "c1", settings: settings, logger: logger)
        return Task { try await controller.run() }
    }

    func waitFor(_ fixture: StoreFixture, _ service: String, timeout: Duration = .seconds(10)) async throws -> [String] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let addresses = try await fixture.addresses(service)
            if !addresses.isEmpty { return addresses }
            try await Task.sleep(for: .milliseconds(20))
        }
        return []
    }

    /// A running controller whose watch never brings assignments back, once it has given "a" .0.
    func controllerThatAssignedA() async throws -> (StoreFixture, ListingRecorder, Task<Void, any Error>) {
        let fixture = try StoreFixture()
        let store = ListingRecorder(fixture.store, deaf: [Keyspace.assignmentsPrefix])
        try await fixture.apply(poolYAML("p", ["192.0.2.0/28"]) + "---\n" + serviceYAML("a"))
        let running = startController(on: store)
        #expect(try await waitFor(fixture, "a") == ["192.0.2.0"])
        return (fixture, store, running)
    }

    /// The running controller lists the store once, then plans each change from memory. Its watch never
    /// brings assignments back here, so only its own folded writes tell it that "a" holds .0.
    @Test func passesPlanFromTheViewAndItsOwnWritesWithoutListing() async throws {
        let (fixture, store, running) = try await controllerThatAssignedA()
        defer { running.cancel() }
        let listedAtStart = store.listed.withLock { $0 }
        #expect(listedAtStart.contains(Keyspace.prefix(of: .service)))

        for (index, name) in ["b", "c", "d"].enumerated() {
            try await fixture.apply(serviceYAML(name))
            #expect(try await waitFor(fixture, name) == ["192.0.2.\(index + 1)"])
        }
        let listedSince = store.listed.withLock { Array($0.dropFirst(listedAtStart.count)) }
        #expect(listedSince == [], "each new service should be planned from memory, not by listing the store")
        // Backends and advertisements never change an address: their churn must not reach the controller.
        // Nor do the speakers' events, which it reads only when it lists.
        #expect(store.watched.withLock { $0 } == ["namespaces/", "ipaddresspools/", "services/", "assignments/"])
        running.cancel()
        _ = try? await running.value
    }

    /// A view that missed a write (here a speaker's event: the controller does not watch events) makes the
    /// pass's conditional write conflict once; the events are listed afresh, and the pass plans again.
    @Test func aViewBehindTheStoreCostsOneConflictAndNoWrongWrite() async throws {
        let fixture = try StoreFixture()
        let store = ListingRecorder(fixture.store, deaf: [Keyspace.eventsPrefix])
        try await fixture.apply(poolYAML("p", ["192.0.2.0/28"]) + "---\n"
                                + serviceYAML("s", annotations: ["metallb.io/loadBalancerIPs": "192.0.2.9"]))
        let running = startController(on: store)
        defer { running.cancel() }
        #expect(try await waitFor(fixture, "s") == ["192.0.2.9"])
        try await fixture.apply(serviceYAML("s"))  // stops asking for .9; keeps it, as it still fits

        // A speaker adds its event to the service's history, unseen by the controller's view.
        let key = ObjectKey(.service, namespace: "default", name: "s")
        let stored = try #require(try await fixture.store.get(Keyspace.events(of: key)))
        var history = try RecordCoding.decode(ServiceEvents.self, from: stored.value)
        history.record(.nodeAssigned, "announcing from node n1", at: RecordCoding.timestamp())
        try await fixture.store.put(Keyspace.events(of: key), try RecordCoding.encode(history),
                                    expecting: .modRevision(stored.modRevision))
        let listedBefore = store.listed.withLock { $0.count }

        // The pool shrinks past .9: the controller moves "s" and appends to the history it cannot see.
        try await fixture.apply(poolYAML("p", ["192.0.2.0/29"]))
        var moved: [String] = []
        for _ in 0..<250 where moved != ["192.0.2.0"] {
            try await Task.sleep(for: .milliseconds(20))
            moved = try await fixture.addresses("s")
        }
        #expect(moved == ["192.0.2.0"])
        #expect(try await fixture.events("s").map(\.reason) == [.ipAllocated, .nodeAssigned, .clearAssignment, .ipAllocated])
        #expect(store.listed.withLock { Array($0.dropFirst(listedBefore)) } == [Keyspace.eventsPrefix],
                "the conflict should relist the events, which the view does not watch, and nothing else")
        running.cancel()
        _ = try? await running.value
    }

    /// A write the controller folds while the view is listing goes into the new listing too: the listing may
    /// have read the prefix before the write landed, and events have no watch to bring it later.
    @Test func aWriteFoldedDuringAListingIsKeptByIt() async throws {
        let fixture = try StoreFixture()
        let store = HeldListingStore(fixture.store, holding: Keyspace.eventsPrefix)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let view = StoreView(store: store, logger: logger)
        let running = Task { await view.run {} }
        defer { running.cancel() }
        for _ in 0..<500 where !store.isHolding { try await Task.sleep(for: .milliseconds(10)) }
        #expect(store.isHolding && view.current() == nil)

        // Read already, not yet installed: the controller commits an event record and folds it.
        let key = "events/default/s"
        let revision = try await fixture.store.put(key, Data("{}".utf8))
        view.fold([([.put(key: key, value: Data("{}".utf8))], revision)])
        store.release()
        var mirror: RecordMirror?
        for _ in 0..<500 where mirror == nil {
            try await Task.sleep(for: .milliseconds(10))
            mirror = view.current()
        }
        #expect(mirror?.records(under: Keyspace.eventsPrefix).map(\.key) == [key])
        #expect(mirror?.records(under: Keyspace.eventsPrefix).first?.modRevision == revision)
        running.cancel()
        await running.value
    }

    /// The resync lists the view afresh, so a change its watch never brought is planned within one period.
    @Test func theResyncHealsAChangeTheWatchLost() async throws {
        let fixture = try StoreFixture()
        let store = ListingRecorder(fixture.store, deaf: [Keyspace.prefix(of: .service)])
        try await fixture.apply(poolYAML("p", ["192.0.2.0/28"]) + "---\n" + serviceYAML("a"))
        let running = startController(on: store) { $0.resyncInterval = .milliseconds(500) }
        defer { running.cancel() }
        #expect(try await waitFor(fixture, "a") == ["192.0.2.0"])
        try await fixture.apply(serviceYAML("b"))
        #expect(try await waitFor(fixture, "b", timeout: .seconds(5)) == ["192.0.2.1"])
        running.cancel()
        _ = try? await running.value
    }

    /// A conflict on anything but the events means the view lags where it watches: the pass goes to the store.
    /// Here an assignment is deleted behind the controller's back (its watch never brings assignments).
    @Test func aLaggingAssignmentSendsThePassToTheStore() async throws {
        let (fixture, _, running) = try await controllerThatAssignedA()
        defer { running.cancel() }
        try await fixture.store.delete(Keyspace.assignment(of: ObjectKey(.service, namespace: "default", name: "a")))

        // The view still holds a's old assignment: the put of the new one is conditioned on it, and conflicts.
        try await fixture.apply(serviceYAML("a", annotations: ["metallb.io/loadBalancerIPs": "192.0.2.5"]))
        var moved: [String] = []
        for _ in 0..<250 where moved != ["192.0.2.5"] {
            try await Task.sleep(for: .milliseconds(20))
            moved = try await fixture.addresses("a")
        }
        #expect(moved == ["192.0.2.5"])
        running.cancel()
        _ = try? await running.value
    }
}
