import Foundation
import Testing
import VIPStore
import VIPStoreConformance
@testable import VIPSQLiteStore

/// Real separate processes on one database: the test binary re-executes itself with a filter that
/// selects `sqliteChildProcessWorker`, which only does anything when the parent set its environment.
@Suite struct MultiProcessTests {
    static let roleVariable = "MVIP_SQLITE_CHILD_ROLE"

    static func spawn(role: String, directory: String, count: Int = 0) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        process.arguments = ["--testing-library", "swift-testing", "--filter", "sqliteChildProcessWorker"]
        var environment = ProcessInfo.processInfo.environment
        environment[roleVariable] = role
        environment["MVIP_CHILD_DIR"] = directory
        environment["MVIP_CHILD_COUNT"] = "\(count)"
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Waits (bounded) for a child to exit, without blocking a cooperative thread in waitpid.
    static func waitForExit(_ process: Process, timeout: Duration = .seconds(60)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        return !process.isRunning
    }

    @Test func processesRacingCompareAndSwapLoseNoUpdate() async throws {
        try await TemporaryDirectory.with { directory in
            let store = try SQLiteStore(directory: directory)
            let probe = WatchProbe(store.watch(prefix: "counters/", after: 0))
            let children = try (0..<3).map { _ in try Self.spawn(role: "increment", directory: directory, count: 100) }
            for child in children {
                #expect(await Self.waitForExit(child))
                #expect(child.terminationStatus == 0)
            }
            let record = try #require(try await store.get("counters/hits"))
            #expect(String(decoding: record.value, as: UTF8.self) == "300")

            // The watch in this process saw the other processes' writes, in increasing revisions.
            let deadline = ContinuousClock.now + .seconds(5)
            while probe.events.last?.revision != record.modRevision, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            let revisions = probe.events.map(\.revision)
            probe.cancel()
            #expect(revisions.last == record.modRevision)
            #expect(zip(revisions, revisions.dropFirst()).allSatisfy { $0 < $1 })
        }
    }

    /// `kill -9` a writer in the middle of multi-key transactions, several times: each transaction is
    /// either fully there or fully absent, and the store opens and writes on.
    @Test func killedWriterLeavesAtomicTransactions() async throws {
        try await TemporaryDirectory.with { directory in
            var previous: Revision = 0
            for round in 0..<5 {
                let child = try Self.spawn(role: "churn", directory: directory)
                let observer = try SQLiteStore(directory: directory)
                let deadline = ContinuousClock.now + .seconds(20)
                while (try await observer.list(prefix: "churn/").revision) < previous + 10, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(2))
                }
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...40)))
                kill(child.processIdentifier, SIGKILL)
                #expect(await Self.waitForExit(child))

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
@Test(.enabled(if: ProcessInfo.processInfo.environment[MultiProcessTests.roleVariable] != nil))
func sqliteChildProcessWorker() async throws {
    let environment = ProcessInfo.processInfo.environment
    let store = try SQLiteStore(directory: try #require(environment["MVIP_CHILD_DIR"]))
    switch environment[MultiProcessTests.roleVariable] {
    case "increment":
        for _ in 0..<(Int(environment["MVIP_CHILD_COUNT"] ?? "") ?? 0) {
            try await SQLiteStoreTests.increment(store, key: "counters/hits")
        }
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
