import Foundation
import Logging
import VIPStore

/// The store interface on etcd v3, over gRPC. Revisions are etcd's own, so a
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
    /// The writers' usual number (`TransactionBatches.inFlight`): etcd syncs its log once for every proposal
    /// waiting, so transactions sent together share a sync.
    public var transactionsInFlight: Int { TransactionBatches.inFlight }

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
        var request = Etcdserverpb_RangeRequest()
        request.key = keys.wire(key)
        let response = try await transport.call(EtcdMethod.range, request, as: Etcdserverpb_RangeResponse.self,
                                                idempotent: true)
        return try response.kvs.first.map(record)
    }

    /// As many reads per transaction as etcd allows in one (`--max-txn-ops`), each transaction at one revision.
    public func get(keys wanted: [String]) async throws -> [Record?] {
        for key in wanted { try validate(key) }
        var records: [Record?] = []
        records.reserveCapacity(wanted.count)
        let perTransaction = max(1, maxOperationsPerTransaction)
        for start in stride(from: 0, to: wanted.count, by: perTransaction) {
            let chunk = wanted[start..<min(start + perTransaction, wanted.count)]
            var request = Etcdserverpb_TxnRequest()
            request.success = chunk.map { key in
                var read = Etcdserverpb_RequestOp()
                read.requestRange.key = keys.wire(key)
                return read
            }
            let response = try await transport.call(EtcdMethod.txn, request, as: Etcdserverpb_TxnResponse.self,
                                                    idempotent: true)
            guard response.responses.count == chunk.count else {
                throw StoreError.unavailable("etcd answered \(response.responses.count) reads to a transaction of \(chunk.count)")
            }
            records += try response.responses.map { try $0.responseRange.kvs.first.map(record) }
        }
        return records
    }

    public func list(prefix: String) async throws -> Listing {
        let (start, end) = keys.range(prefix: prefix)
        var records: [Record] = []
        var revision: Revision?
        var from = start
        // Bounded: each page advances past its last key; a compaction of the pinned revision starts over.
        for _ in 0..<1_000_000 {
            var request = Etcdserverpb_RangeRequest()
            request.key = from
            request.rangeEnd = end
            request.limit = pageSize
            request.revision = revision ?? 0
            let response: Etcdserverpb_RangeResponse
            do {
                response = try await transport.call(EtcdMethod.range, request, as: Etcdserverpb_RangeResponse.self,
                                                    idempotent: true)
            } catch let error as EtcdRequestError where error.code == .outOfRange && revision != nil {
                records = []
                revision = nil
                from = start
                continue
            }
            records += try response.kvs.map(record)
            if revision == nil { revision = response.header.revision }
            guard response.more, let last = response.kvs.last else { break }
            from = last.key + [0]
        }
        return Listing(records: records, revision: revision ?? 0)
    }

    @discardableResult
    public func commit(_ transaction: Transaction) async throws -> Revision {
        for condition in transaction.conditions { try validate(condition.key) }
        for operation in transaction.operations { try validate(operation.key) }
        var request = Etcdserverpb_TxnRequest()
        request.compare = transaction.conditions.map(compare)
        request.success = Self.lastOperationPerKey(transaction.operations).map(requestOp)
        // On failure, read each condition's key back to name the one that failed.
        request.failure = transaction.conditions.map { condition in
            var read = Etcdserverpb_RequestOp()
            read.requestRange.key = keys.wire(condition.key)
            read.requestRange.keysOnly = true
            return read
        }
        let response = try await transport.call(EtcdMethod.txn, request, as: Etcdserverpb_TxnResponse.self,
                                                idempotent: transaction.operations.isEmpty)
        let revision = response.header.revision
        if response.succeeded || transaction.conditions.isEmpty { return revision }
        let found = response.responses.map(\.responseRange.kvs.first)
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
        var request = Etcdserverpb_CompactionRequest()
        request.revision = revision
        do {
            _ = try await transport.call(EtcdMethod.compact, request, as: Etcdserverpb_CompactionResponse.self,
                                         idempotent: true)
        } catch let error as EtcdRequestError where error.code == .outOfRange && error.message.contains("compacted") {
            // Already compacted at or past this revision: what was asked for holds.
        }
    }

    /// A linearizable read: answers only when the member is part of a quorum with a leader.
    public func ping() async throws {
        var request = Etcdserverpb_RangeRequest()
        request.key = keys.wire("leases/ping")
        request.keysOnly = true
        _ = try await transport.call(EtcdMethod.range, request, as: Etcdserverpb_RangeResponse.self, idempotent: true)
    }

    // MARK: mapping

    func record(_ kv: Etcdserverpb_KeyValue) throws -> Record {
        guard let key = keys.local(kv.key) else {
            throw StoreError.unavailable("etcd returned key \(String(decoding: kv.key, as: UTF8.self)) outside \(keys.prefix)")
        }
        return Record(key: key, value: kv.value, createRevision: kv.createRevision, modRevision: kv.modRevision)
    }

    private func compare(_ condition: Condition) -> Etcdserverpb_Compare {
        var compare = Etcdserverpb_Compare()
        compare.key = keys.wire(condition.key)
        switch condition.expectation {
        case .absent:
            compare.target = .create
            compare.result = .equal
            compare.createRevision = 0
        case .present:
            compare.target = .create
            compare.result = .greater
            compare.createRevision = 0
        case .modRevision(let revision):
            compare.target = .mod
            compare.result = .equal
            compare.modRevision = revision
        }
        return compare
    }

    private func requestOp(_ operation: StoreOperation) -> Etcdserverpb_RequestOp {
        var op = Etcdserverpb_RequestOp()
        switch operation {
        case .put(let key, let value):
            op.requestPut.key = keys.wire(key)
            op.requestPut.value = value
        case .delete(let key):
            op.requestDeleteRange.key = keys.wire(key)
        }
        return op
    }

    private static func holds(_ expectation: Expectation, _ current: Etcdserverpb_KeyValue?) -> Bool {
        switch expectation {
        case .absent: current == nil
        case .present: current != nil
        case .modRevision(let revision): current?.modRevision == revision
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
