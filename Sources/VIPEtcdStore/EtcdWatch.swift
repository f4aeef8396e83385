import Foundation
import Synchronization
import VIPStore

/// One watch on etcd's `Watch` stream, kept alive across disconnects: it reconnects with
/// backoff (to the next member if this one is gone) and resumes at the revision after the last event it
/// delivered, so nothing is repeated or lost. Only a compaction of that revision ends it, with
/// `StoreError.compacted`, and the consumer re-lists.
struct EtcdWatch: Sendable {
    let store: EtcdStore
    let prefix: String
    let after: Revision

    /// The revision to ask for next; shared with the reading task that advances it.
    private final class Cursor: Sendable {
        let next: Mutex<Revision>
        init(_ next: Revision) { self.next = Mutex(next) }
        var value: Revision { next.withLock { $0 } }
    }

    /// Set once, when the stream is created; read after it ends.
    private final class Flag: Sendable {
        private let value = Atomic(false)
        /// True the first time only.
        func raise() -> Bool { !value.exchange(true, ordering: .relaxed) }
        var raised: Bool { value.load(ordering: .relaxed) }
    }

    private enum StreamEnd: Error { case reconnect(String), compacted(Revision), recovered }

    func stream() -> AsyncThrowingStream<WatchEvent, Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: WatchEvent.self)
        let task = Task { await run(continuation) }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private func run(_ continuation: AsyncThrowingStream<WatchEvent, Error>.Continuation) async {
        let cursor = Cursor(after + 1)
        var backoff = Backoff()
        var failing = false
        while !Task.isCancelled {
            let requested = cursor.value
            let recoveries = store.transport.recoveries
            let connected = Flag()
            let wasFailing = failing
            var ended: (any Error)?
            do {
                try await session(cursor: cursor, continuation: continuation, connected: {
                    if connected.raise(), wasFailing {
                        store.logger.info("watch on \(prefix) resumed at revision \(requested)")
                    }
                })
            } catch {
                ended = error
            }
            if connected.raised {
                backoff.reset()
                failing = false
            }
            switch ended as? StreamEnd {
            case .compacted(let oldest):
                continuation.finish(throwing: StoreError.compacted(requested: requested - 1, oldestAvailable: oldest))
                return
            case .recovered:
                continue
            default:
                if Task.isCancelled { break }
                if !failing {
                    failing = true
                    store.logger.warning("watch on \(prefix) lost (\(ended.map { "\($0)" } ?? "no error")); reconnecting with backoff from revision \(cursor.value)")
                }
            }
            // Back off, but come back at once when another request gets through: the store is back.
            let wakeAt = ContinuousClock.now + backoff.next()
            while ContinuousClock.now < wakeAt, store.transport.recoveries == recoveries, !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        continuation.finish()
    }

    /// One stream: reads responses until the stream ends, fails, or the transport recovers from an
    /// outage (a watch stream can die silently in a partition, so it is replaced then).
    private func session(cursor: Cursor, continuation: AsyncThrowingStream<WatchEvent, Error>.Continuation,
                         connected: @escaping @Sendable () -> Void) async throws {
        let (start, end) = store.keys.range(prefix: prefix)
        var create = Etcdserverpb_WatchRequest()
        create.createRequest.key = start
        create.createRequest.rangeEnd = end
        create.createRequest.startRevision = cursor.value
        let request = create
        let recoveries = store.transport.recoveries
        let transport = store.transport
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await transport.watch(request) { endpoint, responses in
                    for try await response in responses {
                        if response.created { connected() }
                        try handle(response, endpoint: endpoint, cursor: cursor, continuation: continuation)
                    }
                    throw StreamEnd.reconnect("etcd \(endpoint) closed the watch stream")
                }
            }
            group.addTask {
                while transport.recoveries == recoveries { try await Task.sleep(for: .milliseconds(200)) }
                throw StreamEnd.recovered
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    private func handle(_ response: Etcdserverpb_WatchResponse, endpoint: EtcdConfiguration.Endpoint, cursor: Cursor,
                        continuation: AsyncThrowingStream<WatchEvent, Error>.Continuation) throws {
        if response.canceled {
            if response.compactRevision > 0 { throw StreamEnd.compacted(response.compactRevision) }
            let reason = response.cancelReason.isEmpty ? "no reason given" : response.cancelReason
            throw StreamEnd.reconnect("etcd \(endpoint) cancelled the watch: \(reason)")
        }
        // Events of one transaction share a revision; all of them pass or none (after a reconnect).
        let from = cursor.value
        for event in response.events {
            let revision = event.kv.modRevision
            guard revision >= from else { continue }
            let watchEvent: WatchEvent
            if event.type == .delete {
                guard let key = store.keys.local(event.kv.key) else { continue }
                watchEvent = .delete(key: key, revision: revision)
            } else {
                watchEvent = .put(try store.record(event.kv))
            }
            continuation.yield(watchEvent)
            cursor.next.withLock { $0 = max($0, revision + 1) }
        }
    }
}
