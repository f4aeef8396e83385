import Foundation
import Testing
import VIPStore
import VIPStoreConformance
@testable import VIPSQLiteStore

@Suite struct SQLiteStoreTests {
    static func data(_ text: String) -> Data { Data(text.utf8) }

    @Test func nameDirectoryAndReopening() async throws {
        try await TemporaryDirectory.with { parent in
            let directory = parent + "/nested/store/"
            let store = try SQLiteStore(directory: directory)
            #expect(store.name == "sqlite:" + parent + "/nested/store")
            #expect(FileManager.default.fileExists(atPath: parent + "/nested/store/metalvip.db"))
            let written = try await store.put("services/ns/web", Self.data("web"))
            try await store.ping()

            // A second instance (another process, as far as SQLite knows) sees the same records and revision.
            let again = try SQLiteStore(directory: directory)
            #expect(try await again.get("services/ns/web")?.modRevision == written)
            #expect(try await again.put("services/ns/db", Self.data("db")) == written + 1)
            #expect(try await store.list(prefix: "services/").records.map(\.key) == ["services/ns/db", "services/ns/web"])

            try FileManager.default.removeItem(atPath: directory + SQLiteStore.fileName)
            await #expect(throws: StoreError.self) { try await store.ping() }
        }
    }

    /// An empty value is a record, not a tombstone: get, list and watch all show it.
    @Test func emptyValuesAreRecords() async throws {
        try await TemporaryDirectory.with { directory in
            let store = try SQLiteStore(directory: directory)
            let probe = WatchProbe(store.watch(prefix: "e/", after: 0))
            let revision = try await store.put("e/empty", Data())
            #expect(try await store.get("e/empty")?.value == Data())
            #expect(try await store.list(prefix: "e/").records.map(\.key) == ["e/empty"])
            #expect(await probe.waitForEvents(1) == [.put(Record(key: "e/empty", value: Data(), createRevision: revision, modRevision: revision))])
            probe.cancel()
        }
    }

    @Test func keysThatNoBackendWritesAreRefused() async throws {
        try await TemporaryDirectory.with { directory in
            let store = try SQLiteStore(directory: directory)
            await #expect(throws: StoreError.invalidKey("", reason: "empty key")) { try await store.put("", Self.data("x")) }
            await #expect(throws: StoreError.invalidKey("a\nb", reason: "control character")) { try await store.get("a\nb") }
            await #expect(throws: StoreError.invalidKey("a\u{0}", reason: "control character")) { try await store.list(prefix: "a\u{0}") }
            // Bytes above ASCII are keys like any other, ordered bytewise.
            try await store.put("k/é", Self.data("1"))
            try await store.put("k/z", Self.data("2"))
            #expect(try await store.list(prefix: "k/").records.map(\.key) == ["k/z", "k/é"])
        }
    }

    /// Another process holding the write lock for a while delays a commit; it lands once the lock is free.
    @Test func aCommitWaitsForAnotherWritersTransaction() async throws {
        try await TemporaryDirectory.with { directory in
            let store = try SQLiteStore(directory: directory)
            try await store.put("w/a", Self.data("0"))
            let other = try SQLiteConnection(path: directory + "/" + SQLiteStore.fileName)
            try other.execute("BEGIN IMMEDIATE")
            let release = Task.detached {
                try await Task.sleep(for: .milliseconds(300))
                try other.execute("COMMIT")
            }
            let start = ContinuousClock.now
            try await store.put("w/b", Self.data("1"))
            let waited = ContinuousClock.now - start
            try await release.value
            #expect(waited >= .milliseconds(250), "the commit cannot land while another writer holds the lock")
            #expect(try await store.get("w/b")?.value == Self.data("1"))
        }
    }

    /// A cancelled watch gives back its thread, connection and inotify descriptor.
    @Test func cancelledWatchesCloseTheirThreads() async throws {
        try await TemporaryDirectory.with { directory in
            let store = try SQLiteStore(directory: directory)
            let probes = (0..<3).map { _ in WatchProbe(store.watch(prefix: "", after: 0)) }
            try await store.put("x", Self.data("1"))
            for probe in probes { #expect(await probe.waitForEvents(1).count == 1) }
            #expect(store.openWatches.count == 3)
            for probe in probes { probe.cancel() }
            // The stream ends when its consumer does; the thread notices within a poll, plus a write to wake it.
            let deadline = ContinuousClock.now + .seconds(5)
            while store.openWatches.count > 0, ContinuousClock.now < deadline {
                try await store.put("x", Self.data("again"))
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(store.openWatches.count == 0)
        }
    }

    /// History is swept on its own: after `retention` more revisions a watch from before it ends with
    /// `compacted`, and no older history row is left.
    @Test func oldHistoryIsSweptAutomatically() async throws {
        try await TemporaryDirectory.with { directory in
            let store = try SQLiteStore(directory: directory)
            let first = try await store.put("t/a", Self.data("a"))
            try await store.delete("t/a")
            // An uncontended commit never suspends: yield, so 15,000 of them do not hold a pool thread throughout.
            while try await store.put("t/counter", Self.data("n"), durability: .volatile) < Maintenance.interval * 3 { await Task.yield() }

            let old = WatchProbe(store.watch(prefix: "t/", after: first))
            let outcome = await old.waitForFinish()
            guard case .compacted(let requested, let oldest)? = outcome.error as? StoreError else {
                Issue.record("expected compacted, got \(String(describing: outcome.error))")
                return
            }
            #expect(requested == first)
            #expect(oldest == Maintenance.interval * 3 - Maintenance.retention)
            let connection = try SQLiteConnection(path: directory + "/" + SQLiteStore.fileName)
            #expect(try connection.integer("SELECT min(revision) FROM changes") == oldest + 1)
            #expect(try connection.integer("SELECT count(*) FROM changes") == Maintenance.retention)
        }
    }

    /// Every revision of a key reaches a watch, even when several land between two of its reads: the
    /// history keeps each one, as etcd does.
    @Test func aWatchSeesEveryRevisionOfAKey() async throws {
        try await TemporaryDirectory.with { directory in
            let store = try SQLiteStore(directory: directory)
            let other = try SQLiteStore(directory: directory)
            var written: [Revision] = []
            let probe = WatchProbe(store.watch(prefix: "k/", after: 0))
            // Written back to back by another connection, well inside one wake-up of the watch.
            for index in 0..<20 { written.append(try await other.put("k/one", Self.data("\(index)"), durability: .volatile)) }
            written.append(try await other.commit(Transaction(operations: [
                .put(key: "k/one", value: Self.data("first")), .delete(key: "k/one"), .put(key: "k/two", value: Self.data("2")),
            ])))
            let events = await probe.waitForEvents(22)
            probe.cancel()
            #expect(events.map(\.revision) == written + [written.last!])
            #expect(events.suffix(2) == [.delete(key: "k/one", revision: written.last!),
                                         .put(Record(key: "k/two", value: Self.data("2"), createRevision: written.last!, modRevision: written.last!))])
        }
    }
}
