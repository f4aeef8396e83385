import Foundation
import Testing
import VIPStore

/// Real separate processes on one embedded store: the test binary re-executes itself with a filter that
/// selects the backend's worker test, which only does anything when the parent set its environment.
public struct ChildProcesses: Sendable {
    public static let roleVariable = "MVIP_CHILD_ROLE"
    static let directoryVariable = "MVIP_CHILD_DIR"
    static let countVariable = "MVIP_CHILD_COUNT"

    /// The name of the test function that plays the child.
    public let worker: String

    public init(worker: String) { self.worker = worker }

    /// What this process was started to do, when it is a child; nil in a normal test run.
    public static var role: String? { ProcessInfo.processInfo.environment[roleVariable] }
    public static var directory: String? { ProcessInfo.processInfo.environment[directoryVariable] }
    public static var count: Int { Int(ProcessInfo.processInfo.environment[countVariable] ?? "") ?? 0 }

    public func spawn(role: String, directory: String, count: Int = 0) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        process.arguments = ["--testing-library", "swift-testing", "--filter", worker]
        var environment = ProcessInfo.processInfo.environment
        environment[Self.roleVariable] = role
        environment[Self.directoryVariable] = directory
        environment[Self.countVariable] = "\(count)"
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Waits (bounded) for a child to exit, without blocking a cooperative thread in waitpid.
    public static func waitForExit(_ process: Process, timeout: Duration = .seconds(60)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        return !process.isRunning
    }

    /// Compare-and-swap increment, retried on conflict. Returns how many attempts it took.
    @discardableResult
    public static func increment(_ store: any Store, key: String) async throws -> Int {
        for attempt in 1...10_000 {
            let current = try await store.get(key)
            let value = current.map { Int(String(decoding: $0.value, as: UTF8.self))! } ?? 0
            do {
                try await store.put(key, Data("\(value + 1)".utf8),
                                    expecting: current.map { .modRevision($0.modRevision) } ?? .absent, durability: .volatile)
                return attempt
            } catch StoreError.conflict {
                continue
            }
        }
        throw StoreError.unavailable("increment never won")
    }

    /// Three children each increment one counter 100 times (their role `increment`): no update is lost, and
    /// a watch in this process sees the other processes' writes, in increasing revisions.
    public func racingCompareAndSwapLosesNoUpdate(_ store: any Store, directory: String) async throws {
        let probe = WatchProbe(store.watch(prefix: "counters/", after: 0))
        let children = try (0..<3).map { _ in try spawn(role: "increment", directory: directory, count: 100) }
        for child in children {
            #expect(await Self.waitForExit(child))
            #expect(child.terminationStatus == 0)
        }
        let record = try #require(try await store.get("counters/hits"))
        #expect(String(decoding: record.value, as: UTF8.self) == "300")

        let deadline = ContinuousClock.now + .seconds(5)
        while probe.events.last?.revision != record.modRevision, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let revisions = probe.events.map(\.revision)
        probe.cancel()
        #expect(revisions.last == record.modRevision)
        #expect(zip(revisions, revisions.dropFirst()).allSatisfy { $0 < $1 })
    }

    /// `kill -9` a child in the middle of its multi-key transactions (role `churn`), five times: once the
    /// store is opened again each transaction is fully there or fully absent, and the store writes on.
    /// - Parameters:
    ///   - revision: the store's revision, read without opening a store (which could repair what it checks).
    ///   - reopened: checks of the backend's own on the reopened store, by round.
    public func killedWriterLeavesAtomicTransactions(directory: String, revision: () throws -> Revision,
                                                     open: () throws -> any Store,
                                                     reopened: (Int) -> Void = { _ in }) async throws {
        var previous: Revision = 0
        for round in 0..<5 {
            let child = try spawn(role: "churn", directory: directory)
            let deadline = ContinuousClock.now + .seconds(20)
            while (try? revision()) ?? 0 < previous + 10, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(2))
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...40)))
            kill(child.processIdentifier, SIGKILL)
            #expect(await Self.waitForExit(child))

            let store = try open()
            reopened(round)
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

    /// The child's part of that: five keys rewritten in one transaction, durable and volatile in turn, until
    /// killed (bounded in case nobody does).
    public static func churn(_ commit: (Transaction) async throws -> Void) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        var generation = 0
        while ContinuousClock.now < deadline {
            generation += 1
            let value = Data("generation \(generation) pid \(getpid())".utf8)
            try await commit(Transaction(operations: (0..<5).map { .put(key: "churn/\($0)", value: value) },
                                         durability: generation % 2 == 0 ? .durable : .volatile))
        }
    }
}
