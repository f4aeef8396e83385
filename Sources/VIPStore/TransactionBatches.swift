/// Packs many small transactions into few large ones without crossing a backend's limit (etcd refuses
/// a transaction with more than `--max-txn-ops` compares or operations, 128 by default).
public enum TransactionBatches {
    /// Splits `parts`, in order, into runs whose merged transaction (see `merge`) has at most `limit`
    /// conditions and at most `limit` operations, and at most `maxParts` parts. A part that alone
    /// exceeds the limit forms a run by itself (and the backend will say why it refuses it).
    public static func runs(_ parts: [Transaction], limit: Int, shared: [Condition] = [], maxParts: Int = .max) -> [Range<Int>] {
        var runs: [Range<Int>] = []
        var start = 0
        var conditions = Set(shared)
        var operations = 0
        for (index, part) in parts.enumerated() {
            // Filtered by lookup, not `Set.subtracting`, which walks the growing run's set: quadratic at 10k parts.
            let added = Set(part.conditions.filter { !conditions.contains($0) })
            let fits = conditions.count + added.count <= limit && operations + part.operations.count <= limit
                && index - start < maxParts
            if !fits && index > start {
                runs.append(start..<index)
                start = index
                conditions = Set(shared)
                operations = 0
            }
            conditions.formUnion(part.conditions)
            operations += part.operations.count
        }
        if start < parts.count { runs.append(start..<parts.count) }
        return runs
    }

    /// One transaction for a run: the shared conditions, each part's conditions once, all operations in order.
    public static func merge(_ parts: ArraySlice<Transaction>, shared: [Condition] = [], durability: Durability = .durable) -> Transaction {
        var seen = Set(shared)
        var conditions = shared
        for condition in parts.flatMap(\.conditions) where seen.insert(condition).inserted { conditions.append(condition) }
        return Transaction(conditions: conditions, operations: parts.flatMap(\.operations), durability: durability)
    }

    /// Independent transactions in flight at once, at most, when a writer sends them together and does not
    /// ask for another number.
    public static let inFlight = 4

    /// One transaction's outcome, by its index. A struct, not a tuple: with a `(Int, Result<_, any Error>)`
    /// tuple as the child type, Swift 6.3.1's optimizer dropped or garbled the group's results (the debug
    /// build was right).
    private struct Outcome: Sendable {
        let index: Int
        let result: Result<Revision, any Error>
    }

    /// Commits independent transactions, `inFlight` at a time: on etcd each waits a round trip and a disk
    /// flush. Each one's outcome by index, nil for one never sent: the first failure stops those not yet
    /// started, unless `continuingPastFailures`.
    public static func commit(_ transactions: [Transaction], to store: any Store, continuingPastFailures: Bool = false,
                              inFlight: Int = TransactionBatches.inFlight) async -> [Result<Revision, any Error>?] {
        await withTaskGroup(of: Outcome.self) { group in
            var outcomes = [Result<Revision, any Error>?](repeating: nil, count: transactions.count)
            var pending = transactions.indices.makeIterator()
            var failed = false
            func send(_ index: Int) {
                let transaction = transactions[index]
                group.addTask {
                    do { return Outcome(index: index, result: .success(try await store.commit(transaction))) } catch {
                        return Outcome(index: index, result: .failure(error))
                    }
                }
            }
            for _ in 0..<max(1, inFlight) { if let index = pending.next() { send(index) } }
            while let outcome = await group.next() {
                outcomes[outcome.index] = outcome.result
                if case .failure = outcome.result { failed = true }
                if !failed || continuingPastFailures, let index = pending.next() { send(index) }
            }
            return outcomes
        }
    }

    /// `commit`, for a writer that needs all of them: each one's revision, in order, or the first failure by
    /// index, thrown once those in flight have ended.
    @discardableResult
    public static func commitAll(_ transactions: [Transaction], to store: any Store) async throws -> [Revision] {
        // A transaction is left unsent (nil) only after one failed, and that failure comes first in order.
        try await commit(transactions, to: store).compactMap { try $0?.get() }
    }
}
