import Metrics
import VIPStore

/// A store that times every operation and counts its errors, labelled by backend: the same metrics
/// whichever backend is behind it.
public struct InstrumentedStore: Store {
    public let inner: any Store
    public let backend: String

    public init(_ inner: any Store) {
        self.inner = inner
        backend = inner.name.split(separator: ":").first.map(String.init) ?? "unknown"
    }

    public var name: String { inner.name }

    public var maxOperationsPerTransaction: Int { inner.maxOperationsPerTransaction }
    public var transactionsInFlight: Int { inner.transactionsInFlight }

    private func measure<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        let start = ContinuousClock.now
        do {
            let result = try await body()
            Timer(label: "metalvip_store_operation_duration_seconds",
                  dimensions: [("backend", backend), ("operation", operation)]).recordInterval(since: start)
            return result
        } catch StoreError.conflict(let key, let expected) {
            // A lost compare-and-swap is an answer, not a failure.
            Counter(label: "metalvip_store_conflicts_total", dimensions: [("backend", backend)]).increment()
            throw StoreError.conflict(key: key, expected: expected)
        } catch {
            Counter(label: "metalvip_store_errors_total", dimensions: [("backend", backend), ("operation", operation)]).increment()
            throw error
        }
    }

    public func get(_ key: String) async throws -> Record? { try await measure("get") { try await inner.get(key) } }

    public func get(keys: [String]) async throws -> [Record?] { try await measure("get") { try await inner.get(keys: keys) } }

    public func list(prefix: String) async throws -> Listing { try await measure("list") { try await inner.list(prefix: prefix) } }

    public func commit(_ transaction: Transaction) async throws -> Revision {
        try await measure("commit") { try await inner.commit(transaction) }
    }

    public func watch(prefix: String, after: Revision) -> AsyncThrowingStream<WatchEvent, Error> {
        inner.watch(prefix: prefix, after: after)
    }

    public func compact(through revision: Revision) async throws {
        try await measure("compact") { try await inner.compact(through: revision) }
    }

    public func ping() async throws {
        try await measure("ping") { try await inner.ping() }
    }
}

extension Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
