import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization
import VIPStore

/// One watch on the gateway's streaming `/v3/watch`, kept alive across disconnects: it reconnects with
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
            do {
                try await session(cursor: cursor, continuation: continuation, connected: {
                    backoff.reset()
                    if failing {
                        failing = false
                        store.logger.info("watch on \(prefix) resumed at revision \(requested)")
                    }
                })
            } catch StreamEnd.compacted(let oldest) {
                continuation.finish(throwing: StoreError.compacted(requested: requested - 1, oldestAvailable: oldest))
                return
            } catch StreamEnd.recovered {
                continue
            } catch {
                if Task.isCancelled { break }
                if !failing {
                    failing = true
                    store.logger.warning("watch on \(prefix) lost (\(error)); reconnecting with backoff from revision \(cursor.value)")
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

    /// One connection: reads frames until the stream ends, fails, or the transport recovers from an
    /// outage (a watch stream can die silently in a partition, so it is replaced then).
    private func session(cursor: Cursor, continuation: AsyncThrowingStream<WatchEvent, Error>.Continuation,
                         connected: () -> Void) async throws {
        let (start, end) = store.keys.range(prefix: prefix)
        let request = EtcdWire.WatchRequest(create_request: .init(key: start, range_end: end,
                                                                  start_revision: .init(cursor.value)))
        let recoveries = store.transport.recoveries
        let (response, endpoint) = try await store.transport.stream("/v3/watch", request)
        guard response.status == .ok else {
            let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data($0.readableBytesView) } ?? Data()
            let failure = EtcdWire.ErrorBody(body, status: response.status)
            if failure.code == EtcdWire.ErrorBody.unauthenticated { store.transport.invalidateToken() }
            throw StreamEnd.reconnect("etcd \(endpoint): \(failure.text)")
        }
        connected()
        let transport = store.transport
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await read(response.body, endpoint: endpoint, cursor: cursor, continuation: continuation)
            }
            group.addTask {
                while transport.recoveries == recoveries { try await Task.sleep(for: .milliseconds(200)) }
                throw StreamEnd.recovered
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    private func read(_ body: HTTPClientResponse.Body, endpoint: EtcdConfiguration.Endpoint, cursor: Cursor,
                      continuation: AsyncThrowingStream<WatchEvent, Error>.Continuation) async throws {
        var pending = Data()
        for try await chunk in body {
            pending.append(contentsOf: chunk.readableBytesView)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = pending[pending.startIndex..<newline]
                pending = Data(pending[pending.index(after: newline)...])
                guard !line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) else { continue }
                try handle(line: Data(line), endpoint: endpoint, cursor: cursor, continuation: continuation)
            }
        }
        throw StreamEnd.reconnect("etcd \(endpoint) closed the watch stream")
    }

    private func handle(line: Data, endpoint: EtcdConfiguration.Endpoint, cursor: Cursor,
                        continuation: AsyncThrowingStream<WatchEvent, Error>.Continuation) throws {
        let frame: EtcdWire.WatchFrame
        do {
            frame = try EtcdWire.WatchFrame(line: line)
        } catch {
            throw StreamEnd.reconnect("etcd \(endpoint): unreadable watch frame: \(error)")
        }
        if let error = frame.error {
            if error.code == EtcdWire.ErrorBody.unauthenticated { store.transport.invalidateToken() }
            throw StreamEnd.reconnect("etcd \(endpoint): \(error.text)")
        }
        guard let result = frame.result else { return }
        if result.canceled == true {
            if let compacted = result.compact_revision?.value, compacted > 0 { throw StreamEnd.compacted(compacted) }
            throw StreamEnd.reconnect("etcd \(endpoint) cancelled the watch: \(result.cancel_reason ?? "no reason given")")
        }
        // Events of one transaction share a revision; all of them pass or none (after a reconnect).
        let from = cursor.value
        for event in result.events ?? [] {
            let revision = event.kv.mod_revision?.value ?? 0
            guard revision >= from else { continue }
            let watchEvent: WatchEvent
            if event.type == "DELETE" {
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
