import Foundation
import Synchronization
import Testing
import VIPStore

/// Commits take 20 ms, as a slow round trip to etcd does, and a write to a key starting with
/// `taken` fails at once with a conflict. Counts commits under way.
final class SlowStore: Store {
    let inFlight = Mutex((now: 0, most: 0))
    var name: String { "slow" }
    func get(_ key: String) async throws -> Record? { nil }
    func list(prefix: String) async throws -> Listing { Listing(records: [], revision: 0) }
    func commit(_ transaction: Transaction) async throws -> Revision {
        if let key = transaction.operations.first?.key, key.hasPrefix("taken") { throw StoreError.conflict(key: key, expected: .absent) }
        inFlight.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
        defer { inFlight.withLock { $0.now -= 1 } }
        try await Task.sleep(for: .milliseconds(20))
        return 1
    }
    func watch(prefix: String, after: Revision) -> AsyncThrowingStream<WatchEvent, Error> { AsyncThrowingStream { $0.finish() } }
    func compact(through revision: Revision) async throws {}
}

@Suite struct TransactionBatchesTests {
    func part(_ key: String, shared: String? = nil) -> Transaction {
        Transaction(conditions: [Condition(key, .absent)] + (shared.map { [Condition($0, .present)] } ?? []),
                    operations: [.put(key: key, value: Data(key.utf8))])
    }

    @Test func runsStayWithinTheLimitCountingSharedAndDeduplicatedConditions() {
        let parts = (0..<300).map { part("k\($0)", shared: "leases/nodes/n1") }
        let fence = Condition("leases/controller", .modRevision(7))
        let runs = TransactionBatches.runs(parts, limit: 128, shared: [fence])
        #expect(runs.first == 0..<126, "fence + node lease + 126 claim conditions = 128")
        #expect(runs.flatMap { Array($0) } == Array(0..<300), "every part once, in order")
        for run in runs {
            let merged = TransactionBatches.merge(parts[run], shared: [fence])
            #expect(merged.conditions.count <= 128 && merged.operations.count <= 128)
            #expect(merged.conditions.first == fence)
            #expect(merged.conditions.filter { $0.key == "leases/nodes/n1" }.count == 1)
        }
    }

    @Test func maxPartsAndUnlimitedStores() {
        let parts = (0..<10).map { part("k\($0)") }
        #expect(TransactionBatches.runs(parts, limit: .max) == [0..<10])
        #expect(TransactionBatches.runs(parts, limit: .max, maxParts: 4) == [0..<4, 4..<8, 8..<10])
        #expect(TransactionBatches.runs([], limit: 5).isEmpty)
        // A part bigger than the limit goes alone; the backend then says why it refuses it.
        let big = Transaction(operations: (0..<5).map { .delete(key: "d\($0)") })
        #expect(TransactionBatches.runs([parts[0], big, parts[1]], limit: 3) == [0..<1, 1..<2, 2..<3])
    }

    @Test func independentTransactionsGoAFewAtOnceAndAFailureStopsTheRest() async {
        let transactions = [part("taken")] + (0..<9).map { part("k\($0)") }
        let store = SlowStore()
        let stopped = await TransactionBatches.commit(transactions, to: store)
        #expect(stopped.count == 10)
        #expect(stopped.compactMap { $0 }.count < 10, "none started after the conflict: \(stopped)")
        if case .failure(StoreError.conflict(let key, _))? = stopped[0] { #expect(key == "taken") } else { Issue.record("\(stopped[0].debugDescription)") }
        let all = await TransactionBatches.commit(transactions, to: store, continuingPastFailures: true)
        #expect(all.dropFirst().allSatisfy { if case .success? = $0 { true } else { false } })
        let most = store.inFlight.withLock { $0.most }
        #expect(most > 1 && most <= TransactionBatches.inFlight, "at most \(TransactionBatches.inFlight) at once, more than one: \(most)")
    }

    /// A writer may ask for another number in flight: the speaker asks its store (one on the embedded stores).
    @Test func aWriterSetsHowManyGoAtOnce() async {
        for limit in [1, 2] {
            let store = SlowStore()
            let outcomes = await TransactionBatches.commit((0..<12).map { part("k\($0)") }, to: store, inFlight: limit)
            #expect(outcomes.allSatisfy { if case .success? = $0 { true } else { false } })
            #expect(store.inFlight.withLock { $0.most } == limit)
        }
    }

    @Test func everyTransactionIsSentOnce() async {
        let outcomes = await TransactionBatches.commit((0..<50).map { part("k\($0)") }, to: SlowStore())
        #expect(outcomes.count == 50)
        #expect(outcomes.allSatisfy { if case .success? = $0 { true } else { false } }, "\(outcomes.filter { $0 == nil }.count) never sent")
    }
}
