import Foundation
import Testing
import VIPStore

/// A backend under test: a fresh, empty store for one case, and a way to cut every live connection
/// to it and bring it back (for etcd a `kill -9` and restart; the file store has no connection to cut).
public struct ConformanceBackend: Sendable {
    public var make: @Sendable () async throws -> any Store
    public var interrupt: @Sendable () async throws -> Void
    public init(make: @escaping @Sendable () async throws -> any Store,
                interrupt: @escaping @Sendable () async throws -> Void = {}) {
        self.make = make
        self.interrupt = interrupt
    }
}

/// The behaviour every `Store` backend must show, written against the protocol only so the etcd
/// backend can run the same cases: `@Test(arguments: StoreConformance.allCases)`.
/// Assertions only rely on etcd semantics (e.g. a watch may coalesce nothing it must report).
public enum StoreConformance: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case getPutList
    case getManyKeys
    case createAndModRevision
    case compareAndSwapConflicts
    case multiOperationAtomicity
    case deleteLeavesTombstoneForWatchOnly
    case watchBacklogThenLive
    case watchWholeKeyspace
    case watchFromCompactedRevision
    case revisionsStrictlyIncrease
    case watchNeverRepeatsOrGoesBack
    case watchResumesAcrossInterruption
    case compactionForcesRelist

    public var testDescription: String { rawValue }

    public func run(_ backend: ConformanceBackend) async throws {
        let store = try await backend.make()
        switch self {
        case .getPutList: try await Self.getPutList(store)
        case .getManyKeys: try await Self.getManyKeys(store)
        case .createAndModRevision: try await Self.createAndModRevision(store)
        case .compareAndSwapConflicts: try await Self.compareAndSwapConflicts(store)
        case .multiOperationAtomicity: try await Self.multiOperationAtomicity(store)
        case .deleteLeavesTombstoneForWatchOnly: try await Self.deleteLeavesTombstoneForWatchOnly(store)
        case .watchBacklogThenLive: try await Self.watchBacklogThenLive(store)
        case .watchWholeKeyspace: try await Self.watchWholeKeyspace(store)
        case .watchFromCompactedRevision: try await Self.watchFromCompactedRevision(store)
        case .revisionsStrictlyIncrease: try await Self.revisionsStrictlyIncrease(store)
        case .watchNeverRepeatsOrGoesBack: try await Self.watchNeverRepeatsOrGoesBack(store)
        case .watchResumesAcrossInterruption: try await Self.watchResumesAcrossInterruption(store, backend.interrupt)
        case .compactionForcesRelist: try await Self.compactionForcesRelist(store)
        }
    }

    static func data(_ text: String) -> Data { Data(text.utf8) }

    static func getPutList(_ store: any Store) async throws {
        let keys = ["services/default/web", "services/default/db", "services/other/web",
                    "leases/controller", "leasesX/other", "status/kube-system/dns"]
        var last: Revision = 0
        for key in keys { last = try await store.put(key, data("v:" + key)) }

        let web = try #require(try await store.get("services/default/web"))
        #expect(web.value == data("v:services/default/web"))
        #expect(web.key == "services/default/web")
        #expect(try await store.get("services/default/missing") == nil)

        let leases = try await store.list(prefix: "leases/")
        #expect(leases.records.map(\.key) == ["leases/controller"])
        #expect(leases.revision >= last)
        #expect(leases.skipped.isEmpty)

        let services = try await store.list(prefix: "services/default/")
        #expect(services.records.map(\.key) == ["services/default/db", "services/default/web"])

        let partial = try await store.list(prefix: "leases")
        #expect(partial.records.map(\.key) == ["leases/controller", "leasesX/other"])

        let all = try await store.list(prefix: "")
        #expect(all.records.map(\.key) == keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        #expect(all.records.allSatisfy { $0.value == data("v:" + $0.key) })
        #expect(try await store.list(prefix: "nothing/").records.isEmpty)
    }

    /// Many keys in one call, more than one transaction may carry: each answer in the order asked, nil where
    /// nothing is stored.
    static func getManyKeys(_ store: any Store) async throws {
        let count = min(store.maxOperationsPerTransaction, 128) * 2 + 3
        let keys = (0..<count).map { "many/\($0)" }
        let puts = keys.indices.filter { $0 % 3 != 1 }.map { Transaction(operations: [.put(key: keys[$0], value: data("v:" + keys[$0]))]) }
        let runs = TransactionBatches.runs(puts, limit: store.maxOperationsPerTransaction)
        try await TransactionBatches.commitAll(runs.map { TransactionBatches.merge(puts[$0]) }, to: store)
        let records = try await store.get(keys: keys + ["many/absent", keys[0]])
        #expect(records.count == count + 2)
        for (index, key) in keys.enumerated() {
            if index % 3 == 1 {
                #expect(records[index] == nil, "\(key) was never stored")
            } else {
                #expect(records[index]?.key == key)
                #expect(records[index]?.value == data("v:" + key))
            }
        }
        #expect(records[count] == nil)
        #expect(records[count + 1]?.key == keys[0], "a key asked twice is answered twice")
        #expect(try await store.get(keys: []).isEmpty)
    }

    static func createAndModRevision(_ store: any Store) async throws {
        let first = try await store.put("config/a", data("1"))
        var record = try #require(try await store.get("config/a"))
        #expect(record.createRevision == first && record.modRevision == first)

        let second = try await store.put("config/a", data("2"), durability: .volatile)
        #expect(second > first)
        record = try #require(try await store.get("config/a"))
        #expect(record.createRevision == first && record.modRevision == second && record.value == data("2"))

        let deleted = try await store.delete("config/a")
        #expect(deleted > second)
        let again = try await store.put("config/a", data("3"))
        record = try #require(try await store.get("config/a"))
        #expect(record.createRevision == again && record.modRevision == again)
    }

    static func compareAndSwapConflicts(_ store: any Store) async throws {
        let created = try await store.put("cas/a", data("1"), expecting: .absent)
        await #expect(throws: StoreError.conflict(key: "cas/a", expected: .absent)) {
            try await store.put("cas/a", data("x"), expecting: .absent)
        }
        await #expect(throws: StoreError.conflict(key: "cas/b", expected: .present)) {
            try await store.put("cas/b", data("x"), expecting: .present)
        }
        await #expect(throws: StoreError.conflict(key: "cas/a", expected: .modRevision(created + 100))) {
            try await store.put("cas/a", data("x"), expecting: .modRevision(created + 100))
        }
        let updated = try await store.put("cas/a", data("2"), expecting: .modRevision(created))
        #expect(updated > created)
        try await store.put("cas/a", data("3"), expecting: .present)

        // A failed transaction writes nothing at all, not even its unconditional operations.
        let before = try await store.list(prefix: "cas/")
        let stale = Transaction(conditions: [Condition("cas/a", .modRevision(created))],
                                operations: [.put(key: "cas/c", value: data("c")), .delete(key: "cas/a")])
        await #expect(throws: StoreError.conflict(key: "cas/a", expected: .modRevision(created))) {
            try await store.commit(stale)
        }
        let after = try await store.list(prefix: "cas/")
        #expect(after.records == before.records)
        #expect(after.revision == before.revision)
        #expect(try await store.get("cas/c") == nil)
        #expect(try await store.get("cas/a")?.value == data("3"))
    }

    static func multiOperationAtomicity(_ store: any Store) async throws {
        let revision = try await store.commit(Transaction(operations: [
            .put(key: "m/1", value: data("1")), .put(key: "m/2", value: data("2")), .put(key: "m/3", value: data("3")),
        ]))
        let listing = try await store.list(prefix: "m/")
        #expect(listing.records.map(\.key) == ["m/1", "m/2", "m/3"])
        #expect(listing.records.allSatisfy { $0.modRevision == revision && $0.createRevision == revision })

        // The second condition fails: neither operation may happen.
        await #expect(throws: StoreError.conflict(key: "m/2", expected: .absent)) {
            try await store.commit(Transaction(conditions: [Condition("m/1", .present), Condition("m/2", .absent)],
                                               operations: [.delete(key: "m/1"), .put(key: "m/4", value: data("4"))]))
        }
        #expect(try await store.list(prefix: "m/").records == listing.records)

        let probe = WatchProbe(store.watch(prefix: "m/", after: revision))
        let mixed = try await store.commit(Transaction(
            conditions: [Condition("m/1", .modRevision(revision)), Condition("m/3", .present)],
            operations: [.delete(key: "m/1"), .put(key: "m/2", value: data("two")), .put(key: "m/4", value: data("4"))]))
        #expect(mixed > revision)
        let events = await probe.waitForEvents(3)
        probe.cancel()
        #expect(Set(events) == [
            .delete(key: "m/1", revision: mixed),
            .put(Record(key: "m/2", value: data("two"), createRevision: revision, modRevision: mixed)),
            .put(Record(key: "m/4", value: data("4"), createRevision: mixed, modRevision: mixed)),
        ])
        #expect(try await store.list(prefix: "m/").records.map(\.key) == ["m/2", "m/3", "m/4"])
    }

    static func deleteLeavesTombstoneForWatchOnly(_ store: any Store) async throws {
        let put = try await store.put("d/x", data("x"))
        try await store.put("d/y", data("y"))
        let deleted = try await store.delete("d/x", expecting: .modRevision(put))
        #expect(try await store.get("d/x") == nil)
        #expect(try await store.list(prefix: "d/").records.map(\.key) == ["d/y"])
        #expect(try await store.list(prefix: "").records.map(\.key) == ["d/y"])

        let probe = WatchProbe(store.watch(prefix: "d/x", after: put))
        let events = await probe.waitForEvents(1)
        probe.cancel()
        #expect(events == [.delete(key: "d/x", revision: deleted)])

        await #expect(throws: StoreError.conflict(key: "d/x", expected: .present)) {
            try await store.delete("d/x", expecting: .present)
        }
    }

    static func watchBacklogThenLive(_ store: any Store) async throws {
        let start = try await store.put("w/a", data("a"))
        let b = try await store.put("w/b", data("b"))
        try await store.put("other/x", data("x"))
        let c = try await store.put("w/c", data("c"))
        let deleteA = try await store.delete("w/a")

        let probe = WatchProbe(store.watch(prefix: "w/", after: start))
        let backlog = await probe.waitForEvents(3)
        #expect(backlog.map(\.revision) == [b, c, deleteA])
        #expect(backlog.last == .delete(key: "w/a", revision: deleteA))

        let d = try await store.put("w/d", data("d"))
        try await store.put("wx/outside", data("no"))
        try await store.put("other/y", data("no"))
        let b2 = try await store.put("w/b", data("b2"), durability: .volatile)
        let live = await probe.waitForEvents(5)
        #expect(live.count == 5)
        #expect(Array(live.dropFirst(3)) == [
            .put(Record(key: "w/d", value: data("d"), createRevision: d, modRevision: d)),
            .put(Record(key: "w/b", value: data("b2"), createRevision: b, modRevision: b2)),
        ])
        #expect(await probe.settle().count == 5)
        probe.cancel()
    }

    /// A watch over the empty prefix carries every key, whatever its first segment, backlog and live, in
    /// revision order: what a speaker's single watch relies on.
    static func watchWholeKeyspace(_ store: any Store) async throws {
        let start = try await store.put("claims/192.0.2.1", data("a"))
        let lease = try await store.put("leases/nodes/n1", data("l"))
        let event = try await store.put("events/ns/web", data("e"))
        let deleted = try await store.delete("claims/192.0.2.1")

        let probe = WatchProbe(store.watch(prefix: "", after: start))
        let backlog = await probe.waitForEvents(3)
        #expect(backlog.map(\.revision) == [lease, event, deleted])
        #expect(backlog.map(\.key) == ["leases/nodes/n1", "events/ns/web", "claims/192.0.2.1"])
        #expect(backlog.last == .delete(key: "claims/192.0.2.1", revision: deleted))

        let service = try await store.put("services/ns/web", data("s"))
        let top = try await store.put("toplevel", data("t"), durability: .volatile)
        let both = try await store.commit(Transaction(operations: [
            .put(key: "assignments/ns/web", value: data("x")), .put(key: "leases/controller", value: data("c")),
        ]))
        let live = await probe.waitForEvents(7)
        #expect(live.count == 7)
        #expect(Array(live.dropFirst(3)) == [
            .put(Record(key: "services/ns/web", value: data("s"), createRevision: service, modRevision: service)),
            .put(Record(key: "toplevel", value: data("t"), createRevision: top, modRevision: top)),
            .put(Record(key: "assignments/ns/web", value: data("x"), createRevision: both, modRevision: both)),
            .put(Record(key: "leases/controller", value: data("c"), createRevision: both, modRevision: both)),
        ])
        #expect(await probe.settle().count == 7)
        probe.cancel()
        #expect(try await store.list(prefix: "").records.map(\.key)
                == ["assignments/ns/web", "events/ns/web", "leases/controller", "leases/nodes/n1", "services/ns/web", "toplevel"])
    }

    static func watchFromCompactedRevision(_ store: any Store) async throws {
        let first = try await store.put("c/a", data("a"))
        try await store.delete("c/a")
        let third = try await store.put("c/b", data("b"))
        try await store.compact(through: third)

        let old = WatchProbe(store.watch(prefix: "c/", after: first))
        let outcome = await old.waitForFinish()
        #expect(outcome.finished)
        guard case .compacted(let requested, _)? = outcome.error as? StoreError else {
            Issue.record("expected StoreError.compacted, got \(String(describing: outcome.error))")
            return
        }
        #expect(requested == first)

        let current = WatchProbe(store.watch(prefix: "c/", after: third))
        let next = try await store.put("c/c", data("c"))
        let events = await current.waitForEvents(1)
        current.cancel()
        #expect(events.map(\.revision) == [next])
    }

    static func revisionsStrictlyIncrease(_ store: any Store) async throws {
        var previous: Revision = 0
        for index in 0..<30 {
            let revision: Revision
            switch index % 3 {
            case 0: revision = try await store.put("r/\(index % 4)", data("\(index)"))
            case 1: revision = try await store.put("s/\(index)", data("\(index)"), durability: .volatile)
            default: revision = try await store.commit(Transaction(operations: [
                .put(key: "r/x", value: data("\(index)")), .put(key: "t/y", value: data("\(index)")),
            ]))
            }
            #expect(revision > previous)
            previous = revision
        }
        #expect(try await store.list(prefix: "").revision >= previous)
    }

    static func watchNeverRepeatsOrGoesBack(_ store: any Store) async throws {
        let probe = WatchProbe(store.watch(prefix: "n/", after: 0))
        var last: Revision = 0
        for index in 0..<60 {
            last = try await store.put("n/\(index % 3)", data("\(index)"), durability: .volatile)
        }
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline, !probe.events.contains(where: { $0.revision == last }) {
            try await Task.sleep(for: .milliseconds(10))
        }
        let events = probe.events
        probe.cancel()
        #expect(events.last?.revision == last)
        var seen: [String: Revision] = [:]
        for event in events {
            #expect(event.revision > seen[event.key, default: 0], "\(event.key) went from \(seen[event.key, default: 0]) to \(event.revision)")
            seen[event.key] = event.revision
        }
        #expect(Set(events.map(\.key)) == ["n/0", "n/1", "n/2"])
    }

    /// A watch opened before the backend goes away delivers, once it is back, every change made before
    /// and after, each once and in order: it resumes from the last revision it delivered.
    static func watchResumesAcrossInterruption(_ store: any Store, _ interrupt: @Sendable () async throws -> Void) async throws {
        let start = try await store.put("i/start", data("0"))
        let probe = WatchProbe(store.watch(prefix: "i/", after: start))
        var written: [Revision] = []
        for index in 0..<5 { written.append(try await store.put("i/\(index % 2)", data("before \(index)"))) }
        #expect(await probe.waitForEvents(5).map(\.revision) == written)

        try await interrupt()
        // Writes right after the interruption may find the backend still coming up; each is retried, bounded.
        for index in 0..<5 {
            written.append(try await retrying { try await store.put("i/\(index % 2)", data("after \(index)")) })
        }
        written.append(try await retrying { try await store.delete("i/0") })
        let events = await probe.waitForEvents(written.count, timeout: .seconds(15))
        #expect(events.map(\.revision) == written)
        #expect(events.last == .delete(key: "i/0", revision: written.last!))
        #expect(await probe.settle().count == written.count)
        probe.cancel()
    }

    /// A consumer that lists, then watches from the listing's revision, finds its revision compacted
    /// while it was away: the watch ends with `compacted`, it re-lists, and its view equals the store.
    static func compactionForcesRelist(_ store: any Store) async throws {
        try await store.put("v/a", data("1"))
        try await store.put("v/b", data("1"))
        var mirror = Dictionary(uniqueKeysWithValues: try await store.list(prefix: "v/").records.map { ($0.key, $0.value) })
        var after = try await store.list(prefix: "v/").revision

        try await store.delete("v/a")
        try await store.put("v/b", data("2"))
        let last = try await store.put("v/c", data("3"))
        try await store.compact(through: last)

        var relisted = 0
        // Bounded: one re-list is expected; a second round must then watch cleanly.
        for _ in 0..<3 {
            let probe = WatchProbe(store.watch(prefix: "v/", after: after))
            let outcome = await probe.waitForFinish(timeout: .seconds(2))
            probe.cancel()
            if outcome.finished, case .compacted? = outcome.error as? StoreError {
                let listing = try await store.list(prefix: "v/")
                mirror = Dictionary(uniqueKeysWithValues: listing.records.map { ($0.key, $0.value) })
                after = listing.revision
                relisted += 1
                continue
            }
            for event in probe.events {
                switch event {
                case .put(let record): mirror[record.key] = record.value
                case .delete(let key, _): mirror[key] = nil
                }
            }
            break
        }
        #expect(relisted == 1)
        #expect(mirror == ["v/b": data("2"), "v/c": data("3")])
        #expect(after >= last)
    }

    /// Retries an operation that fails because the backend is coming back, for at most 15 s.
    static func retrying<T>(_ operation: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + .seconds(15)
        while true {
            do {
                return try await operation()
            } catch StoreError.unavailable where ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}
