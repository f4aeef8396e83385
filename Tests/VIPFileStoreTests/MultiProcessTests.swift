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
            try await Self.children.killedWriterLeavesAtomicTransactions(
                directory: directory, revision: { try StoreDirectory(root: directory).readState()?.revision ?? 0 },
                open: { try FileStore(directory: directory) },
                reopened: { round in
                    #expect(!FileManager.default.fileExists(atPath: directory + "/.meta/intent"), "round \(round)")
                })
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
        try await ChildProcesses.churn { try store.commitBlocking($0) }
    default:
        Issue.record("unknown role")
    }
}
