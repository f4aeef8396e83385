import Foundation
import Testing
import VIPStore

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
}
