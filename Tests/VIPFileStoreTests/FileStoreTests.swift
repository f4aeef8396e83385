import Foundation
import Synchronization
import Testing
import VIPStore
import VIPStoreConformance
@testable import VIPFileStore

/// Behaviour specific to the file backend: layout, concurrency between instances, damaged files, recovery.
@Suite struct FileStoreTests {
    static func data(_ text: String) -> Data { Data(text.utf8) }

    static func write(_ path: String, _ contents: Data) throws {
        try contents.write(to: URL(fileURLWithPath: path))
    }

    /// One CAS increment of a decimal counter, retried on conflict; returns attempts used.
    static func increment(_ store: FileStore, key: String) async throws -> Int {
        for attempt in 1...10_000 {
            let current = try await store.get(key)
            let value = current.map { Int(String(decoding: $0.value, as: UTF8.self))! } ?? 0
            do {
                try await store.put(key, data("\(value + 1)"), expecting: current.map { .modRevision($0.modRevision) } ?? .absent,
                                    durability: .volatile)
                return attempt
            } catch StoreError.conflict {
                continue
            }
        }
        throw StoreError.unavailable("increment never won")
    }

    @Test func nameAndDirectoryCreation() async throws {
        try await TemporaryDirectory.with { base in
            let store = try FileStore(directory: base + "/nested/store")
            #expect(store.name == "file:" + base + "/nested/store")
            try await store.put("leases/controller", Self.data("x"))
            #expect(FileManager.default.fileExists(atPath: base + "/nested/store/leases/controller"))
            #expect(FileManager.default.fileExists(atPath: base + "/nested/store/.meta/state"))
            #expect(!FileManager.default.fileExists(atPath: base + "/nested/store/.meta/intent"))
        }
    }

    @Test func unusableDirectoryIsUnavailable() async throws {
        try await TemporaryDirectory.with { base in
            try Self.write(base + "/file", Data())
            #expect {
                try FileStore(directory: base + "/file/store")
            } throws: { error in
                guard case .unavailable(let why)? = error as? StoreError else { return false }
                return why.contains(base + "/file") && why.contains("Not a directory")
            }
        }
    }

    @Test func twoInstancesRacingCompareAndSwapLoseNoUpdate() async throws {
        try await TemporaryDirectory.with { directory in
            let first = try FileStore(directory: directory)
            let second = try FileStore(directory: directory)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in [first, second] {
                    group.addTask { for _ in 0..<200 { _ = try await Self.increment(store, key: "counters/hits") } }
                }
                try await group.waitForAll()
            }
            let record = try #require(try await first.get("counters/hits"))
            #expect(String(decoding: record.value, as: UTF8.self) == "400")
        }
    }

    /// Threads each with their own instance and their own lock descriptor, blocking in flock as
    /// separate processes would (flock is per open file description).
    @Test func threadsWithOwnInstancesSerializeOnFlock() async throws {
        try await TemporaryDirectory.with { directory in
            final class Failures: Sendable { let list = Mutex<[String]>([]) }
            let failures = Failures()
            let threads = 4, perThread = 100
            let done = DispatchGroup()
            for _ in 0..<threads {
                done.enter()
                let thread = Thread {
                    defer { done.leave() }
                    do {
                        let store = try FileStore(directory: directory)
                        for _ in 0..<perThread {
                            var won = false
                            for _ in 0..<10_000 where !won {
                                let current = try store.layout.readEntry("counters/threads")?.record
                                let value = current.map { Int(String(decoding: $0.value, as: UTF8.self))! } ?? 0
                                do {
                                    try store.commitBlocking(Transaction(
                                        conditions: [Condition("counters/threads", current.map { .modRevision($0.modRevision) } ?? .absent)],
                                        operations: [.put(key: "counters/threads", value: Self.data("\(value + 1)"))],
                                        durability: .volatile))
                                    won = true
                                } catch StoreError.conflict {}
                            }
                            if !won { throw StoreError.unavailable("never won") }
                        }
                    } catch {
                        failures.list.withLock { $0.append("\(error)") }
                    }
                }
                thread.start()
            }
            #expect(done.wait(timeout: .now() + 60) == .success)
            #expect(failures.list.withLock { $0 } == [])
            let store = try FileStore(directory: directory)
            #expect(try await store.get("counters/threads")?.value == Self.data("\(threads * perThread)"))
        }
    }

    @Test func damagedAndForeignFilesAreSkippedByName() async throws {
        try await TemporaryDirectory.with { directory in
            let store = try FileStore(directory: directory)
            try await store.put("leases/good", Self.data("ok"))
            try await store.put("leases/victim", Self.data("will be truncated"))
            let victim = directory + "/leases/victim"
            let whole = try Data(contentsOf: URL(fileURLWithPath: victim))
            try whole.prefix(whole.count - 3).write(to: URL(fileURLWithPath: victim))
            try Self.write(directory + "/leases/zero", Data())
            try Self.write(directory + "/leases/notes.txt", Self.data("hello\n"))
            try Self.write(directory + "/leases/bad name", Self.data("x"))
            try Self.write(directory + "/notes.txt", Self.data("hello\n"))
            try FileManager.default.createDirectory(atPath: directory + "/leases/subdir", withIntermediateDirectories: false)

            let leases = try await store.list(prefix: "leases/")
            #expect(leases.records.map(\.key) == ["leases/good"])
            let skipped = Dictionary(uniqueKeysWithValues: leases.skipped.map { ($0.name, $0.reason) })
            #expect(Set(skipped.keys) == ["leases/victim", "leases/zero", "leases/notes.txt", "leases/bad name", "leases/subdir"])
            #expect(skipped["leases/zero"] == "empty file")
            #expect(skipped["leases/victim"]?.contains("length mismatch") == true)
            #expect(skipped["leases/notes.txt"] == "not a record file")

            let all = try await store.list(prefix: "")
            #expect(all.records.map(\.key) == ["leases/good"])
            #expect(all.skipped.contains { $0.name == "notes.txt" })

            await #expect {
                try await store.get("leases/zero")
            } throws: { error in
                (error as? CorruptRecordError)?.file == directory + "/leases/zero"
            }
            #expect(try await store.get("leases/good")?.value == Self.data("ok"))

            // Conditions never trust a damaged file; unconditional writes repair it.
            await #expect(throws: CorruptRecordError.self) {
                try await store.put("leases/victim", Self.data("new"), expecting: .present)
            }
            try await store.put("leases/victim", Self.data("repaired"))
            #expect(try await store.get("leases/victim")?.value == Self.data("repaired"))
            try await store.delete("leases/zero")
            #expect(try await store.get("leases/zero") == nil)
            #expect(!(try await store.list(prefix: "leases/")).skipped.contains { $0.name == "leases/zero" })

            // A watch reads past them too.
            let probe = WatchProbe(store.watch(prefix: "leases/", after: 0))
            let events = await probe.waitForEvents(3)
            probe.cancel()
            #expect(Set(events.map(\.key)) == ["leases/good", "leases/victim", "leases/zero"])
            #expect(events.contains { if case .delete(key: "leases/zero", _) = $0 { true } else { false } })
        }
    }

    /// Lock-free readers racing a writer of two-key transactions never see one key updated without the other.
    @Test func listingsNeverShowHalfATransaction() async throws {
        try await TemporaryDirectory.with { directory in
            let writer = try FileStore(directory: directory)
            let reader = try FileStore(directory: directory)
            let rounds = 300
            let writing = Task {
                for round in 0..<rounds {
                    try await writer.commit(Transaction(operations: [
                        .put(key: "pair/a", value: Self.data("\(round)")), .put(key: "pair/b", value: Self.data("\(round)")),
                    ], durability: .volatile))
                }
            }
            var listings = 0
            let deadline = ContinuousClock.now + .seconds(30)
            var finished = false
            repeat {
                let listing = try await reader.list(prefix: "pair/")
                if listing.records.count == 2 {
                    #expect(listing.records[0].value == listing.records[1].value, "at revision \(listing.revision)")
                    #expect(listing.records.allSatisfy { $0.modRevision <= listing.revision })
                    listings += 1
                }
                finished = try await reader.get("pair/b")?.value == Self.data("\(rounds - 1)")
            } while !finished && ContinuousClock.now < deadline
            try await writing.value
            #expect(listings > 0)
        }
    }

    @Test func leftoverIntentIsFinishedOnOpen() async throws {
        try await TemporaryDirectory.with { directory in
            let store = try FileStore(directory: directory)
            let first = try await store.commit(Transaction(operations: [
                .put(key: "pair/a", value: Self.data("a1")), .put(key: "pair/b", value: Self.data("b1")),
                .put(key: "pair/c", value: Self.data("c1")),
            ]))
            // A writer died after writing its intent and only the first record of revision first+1.
            let next = first + 1
            let intent = Intent(revision: next, entries: [
                .live("pair/a", value: Array("a2".utf8), createRevision: first, modRevision: next),
                .live("pair/b", value: Array("b2".utf8), createRevision: first, modRevision: next),
                .tombstone("pair/c", revision: next),
            ])
            try Data(intent.encode()).write(to: URL(fileURLWithPath: directory + "/.meta/intent"))
            try Data(RecordFile.encode(intent.entries[0])).write(to: URL(fileURLWithPath: directory + "/pair/a"))

            // Readers (which never take the lock) already see the whole transaction, not half of it.
            let during = try await store.list(prefix: "pair/")
            #expect(during.revision == next)
            #expect(during.records.map(\.key) == ["pair/a", "pair/b"])
            #expect(during.records.map(\.value) == [Self.data("a2"), Self.data("b2")])

            let reopened = try FileStore(directory: directory)
            #expect(!FileManager.default.fileExists(atPath: directory + "/.meta/intent"))
            let listing = try await reopened.list(prefix: "pair/")
            #expect(listing.records.map(\.key) == ["pair/a", "pair/b"])
            #expect(listing.records.map(\.value) == [Self.data("a2"), Self.data("b2")])
            #expect(listing.records.allSatisfy { $0.modRevision == next })
            #expect(listing.revision == next)
            #expect(try await reopened.put("pair/d", Self.data("d")) == next + 1)
        }
    }

    @Test func staleIntentNeverRollsBackNewerRecords() async throws {
        try await TemporaryDirectory.with { directory in
            let store = try FileStore(directory: directory)
            let old = try await store.put("k/a", Self.data("old"))
            let new = try await store.put("k/a", Self.data("new"))
            // An intent that was already applied (its removal lost): its revision is not above the state's.
            let stale = Intent(revision: old, entries: [.live("k/a", value: Array("old".utf8), createRevision: old, modRevision: old)])
            try Data(stale.encode()).write(to: URL(fileURLWithPath: directory + "/.meta/intent"))
            let next = try await store.put("k/b", Self.data("b"))
            #expect(next == new + 1)
            #expect(try await store.get("k/a")?.value == Self.data("new"))
            #expect(!FileManager.default.fileExists(atPath: directory + "/.meta/intent"))
        }
    }

    @Test func temporaryFilesAreIgnoredAndOldOnesSwept() async throws {
        try await TemporaryDirectory.with { directory in
            let store = try FileStore(directory: directory)
            try await store.put("leases/a", Self.data("a"))
            let fresh = directory + "/leases/.tmp-1-fresh"
            let old = directory + "/leases/.tmp-2-old"
            let oldMeta = directory + "/.meta/.tmp-3-old"
            for path in [fresh, old, oldMeta] { try Self.write(path, Self.data("MVIP1 P 1")) }
            let longAgo = Date(timeIntervalSinceNow: -3600)
            for path in [old, oldMeta] { try FileManager.default.setAttributes([.modificationDate: longAgo], ofItemAtPath: path) }

            let listing = try await store.list(prefix: "")
            #expect(listing.records.map(\.key) == ["leases/a"])
            #expect(listing.skipped.isEmpty)
            #expect(try await store.get("leases/a")?.value == Self.data("a"))

            try await store.compact(through: listing.revision)
            #expect(FileManager.default.fileExists(atPath: fresh))
            #expect(!FileManager.default.fileExists(atPath: old))
            #expect(!FileManager.default.fileExists(atPath: oldMeta))
        }
    }

    @Test func oddKeysRoundTrip() async throws {
        try await TemporaryDirectory.with { directory in
            let store = try FileStore(directory: directory)
            let keys = [
                "odd/space here", "odd/ü/ß/😀", "odd/%41", "odd/.hidden", "odd/a/b/c/d", "odd/~tilde", "odd/@",
                "odd/back\\slash", "odd/?*:<>|\"'", "odd/" + String(repeating: "x", count: 300),
                "odd/" + String(repeating: "é", count: 200) + "/tail", "single", "sp ace/k", ".dot/k", "odd/…",
            ]
            let value = Data((0...255).map(UInt8.init))
            for key in keys { try await store.put(key, value + Data(key.utf8)) }
            for key in keys {
                let record = try #require(try await store.get(key), "\(key)")
                #expect(record.key == key)
                #expect(record.value == value + Data(key.utf8))
            }
            let listing = try await store.list(prefix: "")
            #expect(listing.skipped == [])
            #expect(listing.records.map(\.key) == keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
            #expect(try await store.list(prefix: "odd/").records.count == keys.filter { $0.hasPrefix("odd/") }.count)
            #expect(try await store.list(prefix: "odd/ü/").records.map(\.key) == ["odd/ü/ß/😀"])
            // A prefix may end inside the first segment.
            #expect(try await store.list(prefix: "sin").records.map(\.key) == ["single"])

            let probe = WatchProbe(store.watch(prefix: "odd/", after: 0))
            let events = await probe.waitForEvents(keys.filter { $0.hasPrefix("odd/") }.count)
            probe.cancel()
            #expect(Set(events.map(\.key)) == Set(keys.filter { $0.hasPrefix("odd/") }))
        }
    }

    @Test(arguments: [
        ("", "empty key"), ("/a", "empty segment"), ("a/", "empty segment"), ("a//b", "empty segment"),
        ("./a", "'.' or '..' segment"), ("a/..", "'.' or '..' segment"), ("a/\u{0}b", "contains NUL"),
        ("a/\nb", "contains control character U+A"), ("a/\u{7F}", "contains control character U+7F"),
        ("a/\u{85}", "contains control character U+85"),
        (String(repeating: "s", count: 300) + "/k", "first segment too long (encoded over 200 bytes)"),
    ])
    func invalidKeysAreRejected(key: String, reason: String) async throws {
        try await TemporaryDirectory.with { directory in
            let store = try FileStore(directory: directory)
            await #expect(throws: StoreError.invalidKey(key, reason: reason)) { try await store.get(key) }
            await #expect(throws: StoreError.invalidKey(key, reason: reason)) { try await store.put(key, Self.data("x")) }
            await #expect(throws: StoreError.invalidKey(key, reason: reason)) {
                try await store.commit(Transaction(conditions: [Condition(key, .absent)],
                                                   operations: [.put(key: "fine/key", value: Self.data("x"))]))
            }
            #expect(try await store.get("fine/key") == nil)
        }
    }

    @Test func watchSeesWritesOfAnotherInstanceAndNewDirectories() async throws {
        try await TemporaryDirectory.with { directory in
            let watcher = try FileStore(directory: directory)
            let writer = try FileStore(directory: directory)
            let all = WatchProbe(watcher.watch(prefix: "", after: 0))
            let leases = WatchProbe(watcher.watch(prefix: "leases/", after: 0))
            try await Task.sleep(for: .milliseconds(50))
            let first = try await writer.put("leases/node-1", Self.data("1"), durability: .volatile)
            let second = try await writer.put("services/default/web", Self.data("w"))
            let third = try await writer.put("leases/node-2", Self.data("2"), durability: .volatile)
            #expect(await all.waitForEvents(3).map(\.revision) == [first, second, third])
            #expect(await leases.waitForEvents(2).map(\.key) == ["leases/node-1", "leases/node-2"])
            #expect(await leases.settle().count == 2)
            all.cancel()
            leases.cancel()
        }
    }

    /// The watch thread exits and closes its inotify descriptor once the consumer goes away.
    @Test func cancelledWatchReleasesItsDescriptor() async throws {
        try await TemporaryDirectory.with { directory in
            let store = try FileStore(directory: directory)
            try await store.put("x/a", Self.data("a"))
            let probes = (0..<3).map { _ in WatchProbe(store.watch(prefix: "x/", after: 0)) }
            for probe in probes { await probe.waitForEvents(1) }
            #expect(store.openWatches.count == 3)
            for probe in probes { probe.cancel() }
            let deadline = ContinuousClock.now + .seconds(5)
            while store.openWatches.count > 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(store.openWatches.count == 0)
            for probe in probes { #expect(await probe.waitForFinish().finished) }
        }
    }

    @Test func automaticCompactionDropsOldTombstones() async throws {
        try await TemporaryDirectory.with { directory in
            let store = try FileStore(directory: directory)
            try await store.put("gc/a", Self.data("a"))
            let deleted = try await store.delete("gc/a")
            try await store.put("gc/b", Self.data("b"))
            #expect(FileManager.default.fileExists(atPath: directory + "/gc/a"))
            // Pretend many revisions and tombstones have gone by since the last sweep.
            let aged = StoreState(revision: deleted + Maintenance.retention + 10, compacted: 0,
                                  tombstones: Maintenance.tombstoneThreshold, nextMaintenance: 0)
            try Data(aged.encode()).write(to: URL(fileURLWithPath: directory + "/.meta/state"))
            let revision = try await store.put("gc/c", Self.data("c"))
            #expect(!FileManager.default.fileExists(atPath: directory + "/gc/a"))
            let state = try #require(try store.layout.readState())
            #expect(state.compacted == revision - Maintenance.retention)
            #expect(state.nextMaintenance == revision + Maintenance.interval)
            #expect(state.tombstones == 0)
            #expect(try await store.list(prefix: "gc/").records.map(\.key) == ["gc/b", "gc/c"])
        }
    }

    @Test func missingStateIsRecoveredFromRecords() async throws {
        try await TemporaryDirectory.with { directory in
            let store = try FileStore(directory: directory)
            var last: Revision = 0
            for index in 0..<5 { last = try await store.put("s/\(index)", Self.data("\(index)")) }
            try FileManager.default.removeItem(atPath: directory + "/.meta/state")
            #expect(try await store.put("s/next", Self.data("n")) == last + 1)
        }
    }

    @Test func keyLayoutKeepsPrefixesApart() throws {
        #expect(KeyLayout.location(of: "leases/controller") == RecordLocation(directoryName: "leases", fileName: "controller"))
        #expect(KeyLayout.location(of: "services/default/web") == RecordLocation(directoryName: "services", fileName: "default%2Fweb"))
        #expect(KeyLayout.location(of: "config") == RecordLocation(directoryName: "config", fileName: "@"))
        #expect(KeyLayout.location(of: ".x/.y") == RecordLocation(directoryName: "%2Ex", fileName: "%2Ey"))
        #expect(KeyLayout.meaning(directoryName: "services", fileName: "default%2Fweb") == .key("services/default/web"))
        #expect(KeyLayout.meaning(directoryName: "services", fileName: "default%2fweb") == .foreign)
        #expect(KeyLayout.meaning(directoryName: "services", fileName: "notes.txt") == .key("services/notes.txt"))
        #expect(KeyLayout.meaning(directoryName: "services", fileName: "a b") == .foreign)
        let long = "a/" + String(repeating: "z", count: 500)
        let location = KeyLayout.location(of: long)
        #expect(location.fileName.utf8.count == 33 && location.fileName.hasPrefix("~"))
        #expect(KeyLayout.meaning(directoryName: "a", fileName: location.fileName) == .hashed)
    }

    @Test func recordFormatRejectsDamage() throws {
        let entry = StoredEntry.live("a/b", value: [0, 1, 2, 255], createRevision: 3, modRevision: 7)
        let bytes = RecordFile.encode(entry)
        #expect(try RecordFile.decode(bytes) == entry)
        var flipped = bytes
        flipped[flipped.count - 1] ^= 0x40
        #expect(throws: RecordFormatError.self) { try RecordFile.decode(flipped) }
        #expect(throws: RecordFormatError.self) { try RecordFile.decode(Array(bytes.dropLast())) }
        #expect(throws: RecordFormatError.self) { try RecordFile.decode(bytes + [0]) }
        let tombstone = StoredEntry.tombstone("a/b", revision: 9)
        #expect(try RecordFile.decode(RecordFile.encode(tombstone)) == tombstone)
    }
}
