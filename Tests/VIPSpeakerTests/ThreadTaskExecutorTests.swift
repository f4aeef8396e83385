import Foundation
import Testing
@testable import VIPSpeaker
import VIPFileStore
import VIPStore

/// Renewals rely on this: work that prefers the executor runs on its thread, also after it slept or awaited
/// nonisolated async code (a store call), so a busy cooperative pool cannot delay it.
@Suite struct ThreadTaskExecutorTests {
    /// Nonisolated async work, as a store call is: it follows the task's executor preference.
    nonisolated func storeLikeCall(_ store: any Store, _ executor: ThreadTaskExecutor) async throws -> Bool {
        _ = try await store.get("leases/nodes/n1")
        return executor.isCurrent
    }

    @Test func aTaskThatPrefersItRunsOnItsThreadAcrossSuspensions() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("metalvip-executor-\(getpid())-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try FileStore(directory: directory)
        let executor = ThreadTaskExecutor()
        #expect(!executor.isCurrent)
        let seen = try await Task(executorPreference: executor) { () async throws -> [Bool] in
            var seen = [executor.isCurrent]
            try await Task.sleep(for: .milliseconds(5))
            seen.append(executor.isCurrent)
            seen.append(try await storeLikeCall(store, executor))
            seen.append(executor.isCurrent)
            return seen
        }.value
        #expect(seen == [true, true, true, true])
        await executor.shutdown()
    }
}
