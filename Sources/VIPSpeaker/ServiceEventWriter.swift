import Logging
import Synchronization
import VIPModel
import VIPStore

/// Appends events to services' records in the background, batched: a node that takes a thousand VIPs writes
/// a few transactions, not a thousand durable single writes, which held the file store's lock long enough to
/// starve every node-lease renewal on the host. Events are history for people, so they are written volatile.
final class ServiceEventWriter: Sendable {
    struct Pending: Sendable {
        var service: ObjectKey
        var reason: EventReason
        var message: String
        var endpoint: String?
        var time: String
    }

    private let store: any Store
    private let logger: Logger
    private let queue = Mutex<(pending: [Pending], draining: Bool)>(([], false))
    /// Services whose events go in one transaction at most.
    static let batchSize = 256

    init(store: any Store, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// Queues the event for each service; one background task drains the queue in order.
    func record(_ reason: EventReason, _ message: String, on services: [ObjectKey], endpoint: String? = nil) {
        let time = RecordCoding.timestamp()
        let start = queue.withLock { queue in
            queue.pending += services.map { Pending(service: $0, reason: reason, message: message, endpoint: endpoint, time: time) }
            defer { queue.draining = true }
            return !queue.draining
        }
        if start { Task.detached { await self.drain() } }
    }

    private func drain() async {
        while true {
            let batch = queue.withLock { queue in
                defer { queue.pending = [] }
                if queue.pending.isEmpty { queue.draining = false }
                return queue.pending
            }
            if batch.isEmpty { return }
            await write(batch)
        }
    }

    /// Reads each service's events, appends, and commits in chunks, each conditional on what it read. A chunk
    /// that races another writer is redone service by service.
    private func write(_ batch: [Pending]) async {
        var order: [ObjectKey] = []
        var byService: [ObjectKey: [Pending]] = [:]
        for event in batch {
            if byService[event.service] == nil { order.append(event.service) }
            byService[event.service, default: []].append(event)
        }
        for chunk in stride(from: 0, to: order.count, by: Self.batchSize).map({ order[$0..<min($0 + Self.batchSize, order.count)] }) {
            let current: [Record?]
            do {
                current = try await store.get(keys: chunk.map(Keyspace.events(of:)))
            } catch {
                logger.debug("could not read \(chunk.count) services' events: \(error)")
                continue
            }
            var parts: [Transaction] = []
            for (service, record) in zip(chunk, current) {
                if let part = try? append(byService[service] ?? [], to: service, over: record) { parts.append(part) }
            }
            for run in TransactionBatches.runs(parts, limit: store.maxOperationsPerTransaction) where !parts[run].isEmpty {
                do {
                    try await store.commit(TransactionBatches.merge(parts[run], durability: .volatile))
                } catch StoreError.conflict {
                    for part in parts[run] { await retry(part, byService) }
                } catch {
                    logger.debug("could not record \(parts[run].count) service events: \(error)")
                }
            }
        }
    }

    /// The write that appends `events` to the service's record as read (`current`); nil when there is nothing new.
    private func append(_ events: [Pending], to service: ObjectKey, over current: Record?) throws -> Transaction? {
        let key = Keyspace.events(of: service)
        var record = try current.map { try RecordCoding.decode(ServiceEvents.self, from: $0.value) } ?? ServiceEvents()
        var changed = false
        for event in events where record.record(event.reason, event.message, at: event.time, endpoint: event.endpoint) {
            changed = true
        }
        guard changed else { return nil }
        return Transaction(conditions: [Condition(key, current.map { .modRevision($0.modRevision) } ?? .absent)],
                           operations: [.put(key: key, value: try RecordCoding.encode(record))], durability: .volatile)
    }

    /// One service's append, read afresh, a few times over if other writers keep racing it.
    private func retry(_ part: Transaction, _ byService: [ObjectKey: [Pending]]) async {
        guard let key = part.operations.first?.key,
              let service = Keyspace.service(fromKey: key, prefix: Keyspace.eventsPrefix) else { return }
        for _ in 0..<5 {
            do {
                let current = try await store.get(Keyspace.events(of: service))
                guard let transaction = try append(byService[service] ?? [], to: service, over: current) else { return }
                try await store.commit(transaction)
                return
            } catch StoreError.conflict {
                continue
            } catch {
                logger.debug("could not record events for \(service.namespacedName): \(error)")
                return
            }
        }
    }
}
