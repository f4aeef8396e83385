import Foundation
import Logging
import VIPStore

/// The store interface on etcd v3, through its JSON gateway. Revisions are etcd's own, so a
/// compare-and-swap on `modRevision` is an etcd compare on `mod_revision`, and a watch resumes at
/// the exact revision after the last event it delivered.
public final class EtcdStore: Store {
    public let name: String
    let transport: EtcdTransport
    let keys: EtcdKeys
    let logger: Logger
    /// Keys per range page: a /64's worth of assignments is listed in pages, all at one revision.
    let pageSize: Int64
    /// etcd's `--max-txn-ops` (128 unless the operator raised it).
    public let maxOperationsPerTransaction: Int

    public init(_ configuration: EtcdConfiguration, pageSize: Int64 = 1000,
                logger: Logger = Logger(label: "metalvip.etcd"), connections: EtcdConnections = .shared) throws {
        transport = try EtcdTransport(configuration: configuration, connections: connections)
        keys = EtcdKeys(prefix: configuration.prefix)
        name = "etcd:" + configuration.endpoints.map(\.description).joined(separator: ",") + configuration.prefix
        self.pageSize = pageSize
        maxOperationsPerTransaction = configuration.maxOperationsPerTransaction
        self.logger = logger
    }

    public func get(_ key: String) async throws -> Record? {
        try validate(key)
        let response = try await transport.call("/v3/kv/range", EtcdWire.RangeRequest(key: keys.wire(key)),
                                                as: EtcdWire.RangeResponse.self, idempotent: true)
        return try response.kvs?.first.map(record)
    }

    public func list(prefix: String) async throws -> Listing {
        let (start, end) = keys.range(prefix: prefix)
        var records: [Record] = []
        var revision: Revision?
        var from = start
        // Bounded: each page advances past its last key; a compaction of the pinned revision starts over.
        for _ in 0..<1_000_000 {
            let request = EtcdWire.RangeRequest(key: from, range_end: end, limit: .init(pageSize),
                                                revision: revision.map(EtcdWire.Int64String.init))
            let response: EtcdWire.RangeResponse
            do {
                response = try await transport.call("/v3/kv/range", request, as: EtcdWire.RangeResponse.self, idempotent: true)
            } catch let error as EtcdRequestError where error.body.code == EtcdWire.ErrorBody.outOfRange && revision != nil {
                records = []
                revision = nil
                from = start
                continue
            }
            let page = try (response.kvs ?? []).map(record)
            records += page
            if revision == nil { revision = response.header?.revision?.value ?? 0 }
            guard response.more == true, let last = response.kvs?.last else { break }
            from = last.key + [0]
        }
        return Listing(records: records, revision: revision ?? 0)
    }

    @discardableResult
    public func commit(_ transaction: Transaction) async throws -> Revision {
        for condition in transaction.conditions { try validate(condition.key) }
        for operation in transaction.operations { try validate(operation.key) }
        let request = EtcdWire.TxnRequest(
            compare: transaction.conditions.map(compare),
            success: Self.lastOperationPerKey(transaction.operations).map(requestOp),
            // On failure, read each condition's key back to name the one that failed.
            failure: transaction.conditions.map {
                EtcdWire.RequestOp(request_range: .init(key: keys.wire($0.key), keys_only: true))
            })
        let response = try await transport.call("/v3/kv/txn", request, as: EtcdWire.TxnResponse.self,
                                                idempotent: transaction.operations.isEmpty)
        let revision = response.header?.revision?.value ?? 0
        if response.succeeded == true || transaction.conditions.isEmpty { return revision }
        let found = (response.responses ?? []).map { $0.response_range?.kvs?.first }
        for (index, condition) in transaction.conditions.enumerated() {
            let current = index < found.count ? found[index] : nil
            if !Self.holds(condition.expectation, current) {
                throw StoreError.conflict(key: condition.key, expected: condition.expectation)
            }
        }
        // Every condition holds now: something changed back between the compare and the read.
        throw StoreError.conflict(key: transaction.conditions[0].key, expected: transaction.conditions[0].expectation)
    }

    public func watch(prefix: String, after: Revision) -> AsyncThrowingStream<WatchEvent, Error> {
        EtcdWatch(store: self, prefix: prefix, after: after).stream()
    }

    public func compact(through revision: Revision) async throws {
        do {
            _ = try await transport.call("/v3/kv/compaction", EtcdWire.CompactionRequest(revision: .init(revision)),
                                         as: EtcdWire.RangeResponse.self, idempotent: true)
        } catch let error as EtcdRequestError
                    where error.body.code == EtcdWire.ErrorBody.outOfRange && error.body.text.contains("compacted") {
            // Already compacted at or past this revision: what was asked for holds.
        }
    }

    /// A linearizable read: answers only when the member is part of a quorum with a leader.
    public func ping() async throws {
        _ = try await transport.call("/v3/kv/range", EtcdWire.RangeRequest(key: keys.wire("leases/ping"), keys_only: true),
                                     as: EtcdWire.RangeResponse.self, idempotent: true)
    }

    // MARK: mapping

    func record(_ kv: EtcdWire.KeyValue) throws -> Record {
        guard let key = keys.local(kv.key) else {
            throw StoreError.unavailable("etcd returned key \(String(decoding: kv.key, as: UTF8.self)) outside \(keys.prefix)")
        }
        return Record(key: key, value: kv.value ?? Data(), createRevision: kv.create_revision?.value ?? 0,
                      modRevision: kv.mod_revision?.value ?? 0)
    }

    private func compare(_ condition: Condition) -> EtcdWire.Compare {
        let key = keys.wire(condition.key)
        switch condition.expectation {
        case .absent:
            return .init(key: key, target: "CREATE", result: "EQUAL", create_revision: .init(0))
        case .present:
            return .init(key: key, target: "CREATE", result: "GREATER", create_revision: .init(0))
        case .modRevision(let revision):
            return .init(key: key, target: "MOD", result: "EQUAL", mod_revision: .init(revision))
        }
    }

    private func requestOp(_ operation: StoreOperation) -> EtcdWire.RequestOp {
        switch operation {
        case .put(let key, let value): .init(request_put: .init(key: keys.wire(key), value: value))
        case .delete(let key): .init(request_delete_range: .init(key: keys.wire(key)))
        }
    }

    private static func holds(_ expectation: Expectation, _ current: EtcdWire.KeyValue?) -> Bool {
        switch expectation {
        case .absent: current == nil
        case .present: current != nil
        case .modRevision(let revision): current?.mod_revision?.value == revision
        }
    }

    /// etcd refuses a transaction that names one key twice; the last operation on a key is the one
    /// that would stand, so only it is sent, in its original place.
    static func lastOperationPerKey(_ operations: [StoreOperation]) -> [StoreOperation] {
        var last: [String: Int] = [:]
        for (index, operation) in operations.enumerated() { last[operation.key] = index }
        return operations.enumerated().filter { last[$0.element.key] == $0.offset }.map(\.element)
    }

    private func validate(_ key: String) throws {
        if let reason = StoreKeys.problem(with: key) { throw StoreError.invalidKey(key, reason: reason) }
    }
}
