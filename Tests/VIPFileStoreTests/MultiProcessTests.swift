import Foundation
import Testing
import VIPStore
import VIPStoreConformance
@testable import VIPFileStore

/// Real separate processes on one directory (`ChildProcesses`).
@Suite struct MultiProcessTests {
    static let children = ChildProcesses(worker: "childProcessWorker")

    @Test func processesRacingCompareAndSwapLoseNoUpdate() async throws {
        try await TemporaryDirectory.with { directory in
            try await Self.children.racingCompareAndSwapLosesNoUpdate(try FileStore(directory: directory), directory: directory)
        }
    }

    /// `kill -9` a writer in the middle of multi-key transactions, several times: every record file
    /// stays whole, and each transaction is either fully there or fully absent once the store is reopened.
    @Test func killedWriterLeavesWholeRecordsAndAtomicTransactions() async throws {
        try await TemporaryDirectory.with { directory in
            var previous: Revision = 0
            for round in 0..<5 {
                let child = try Self.children.spawn(role: "churn", directory: directory)
                let reader = StoreDirectory(root: directory)
                let deadline = ContinuousClock.now + .seconds(20)
                while (try? reader.readState())??.revision ?? 0 < previous + 10, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(2))
                }
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...40)))
                kill(child.processIdentifier, SIGKILL)
                #expect(await ChildProcesses.waitForExit(child))

                let store = try FileStore(directory: directory)
                #expect(!FileManager.default.fileExists(atPath: directory + "/.meta/intent"), "round \(round)")
                let listing = try await store.list(prefix: "churn/")
                #expect(listing.skipped == [], "round \(round)")
                #expect(listing.records.map(\.key) == (0..<5).map { "churn/\($0)" }, "round \(round)")
                #expect(Set(listing.records.map(\.value)).count == 1, "round \(round): torn transaction")
                #expect(Set(listing.records.map(\.modRevision)).count == 1, "round \(round)")
                let newest = listing.records.map(\.modRevision).max() ?? 0
                #expect(listing.revision >= newest)
                #expect(newest > previous)
                let next = try await store.put("after/churn", Data("x".utf8))
                #expect(next > listing.revision)
                previous = next
            }
        }
    }
}

/// The child side of `MultiProcessTests`; a no-op (and skipped) in a normal test run.
@Test(.enabled(if: ChildProcesses.role != nil))
func childProcessWorker() async throws {
    let store = try FileStore(directory: try #require(ChildProcesses.directory))
    switch ChildProcesses.role {
    case "increment":
        for _ in 0..<ChildProcesses.count { try await ChildProcesses.increment(store, key: "counters/hits") }
    case "churn":
        // Runs until killed (bounded in case nobody does).
        let deadline = ContinuousClock.now + .seconds(30)
        var generation = 0
        while ContinuousClock.now < deadline {
            generation += 1
            let value = Data("generation \(generation) pid \(getpid())".utf8)
            try store.commitBlocking(Transaction(operations: (0..<5).map { .put(key: "churn/\($0)", value: value) },
                                                 durability: generation % 2 == 0 ? .durable : .volatile))
        }
    default:
        Issue.record("unknown role")
    }
}
