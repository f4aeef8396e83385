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

    @Test func killedWriterLeavesAtomicTransactions() async throws {
        try await TemporaryDirectory.with { directory in
            let observer = try SQLiteConnection(path: directory + "/" + SQLiteStore.fileName)
            try await Self.children.killedWriterLeavesAtomicTransactions(
                directory: directory, revision: { try observer.integer(Schema.revision) ?? 0 },
                open: { try SQLiteStore(directory: directory) })
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
        try await ChildProcesses.churn { try await store.commit($0) }
    default:
        Issue.record("unknown role")
    }
}
