import Foundation
import Testing
import VIPStore
import VIPStoreConformance
@testable import VIPSQLiteStore

/// Real separate processes on one database (`ChildProcesses`).
@Suite struct MultiProcessTests {
    static let children = ChildProcesses(worker: "sqliteChildProcessWorker")

    @Test func processesRacingCompareAndSwapLoseNoUpdate() async throws {
        try await TemporaryDirectory.with { directory in
            try await Self.children.racingCompareAndSwapLosesNoUpdate(try SQLiteStore(directory: directory), directory: directory)
        }
    }

    /// `kill -9` a writer in the middle of multi-key transactions, several times: each transaction is
    /// either fully there or fully absent, and the store opens and writes on.
    @Test func killedWriterLeavesAtomicTransactions() async throws {
        try await TemporaryDirectory.with { directory in
            var previous: Revision = 0
            for round in 0..<5 {
                let child = try Self.children.spawn(role: "churn", directory: directory)
                let observer = try SQLiteStore(directory: directory)
                let deadline = ContinuousClock.now + .seconds(20)
                while (try await observer.list(prefix: "churn/").revision) < previous + 10, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(2))
                }
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...40)))
                kill(child.processIdentifier, SIGKILL)
                #expect(await ChildProcesses.waitForExit(child))

                let store = try SQLiteStore(directory: directory)
                let listing = try await store.list(prefix: "churn/")
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
func sqliteChildProcessWorker() async throws {
    let store = try SQLiteStore(directory: try #require(ChildProcesses.directory))
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
            try await store.commit(Transaction(operations: (0..<5).map { .put(key: "churn/\($0)", value: value) },
                                               durability: generation % 2 == 0 ? .durable : .volatile))
        }
    default:
        Issue.record("unknown role")
    }
}
