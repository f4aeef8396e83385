import Synchronization

/// LinkMonitor's shared state: the latest `LinkInfo` per interface index and the change subscribers.
/// Kept apart from libnl's cache because that cache is not thread-safe, while `links()` is called from anywhere.
final class LinkRegistry: Sendable {
    private struct State {
        var links: [Int32: LinkInfo] = [:]
        var subscribers: [Int: AsyncStream<LinkInfo>.Continuation] = [:]
        var nextSubscriber = 0
        var closed = false
    }

    private let state = Mutex(State())

    func links() -> [LinkInfo] {
        state.withLock { $0.links.values.sorted { $0.index < $1.index } }
    }

    func link(named name: String) -> LinkInfo? {
        state.withLock { state in state.links.values.first { $0.name == name } }
    }

    /// Replaces the whole table without announcing anything: the starting point subscribers read with `links()`.
    func load(_ links: [LinkInfo]) {
        state.withLock { state in
            state.links = Dictionary(links.map { ($0.index, $0) }, uniquingKeysWith: { _, newer in newer })
        }
    }

    /// Records a new or changed link; announces it only when something the speaker cares about changed
    /// (rtnetlink also reports statistics-only updates).
    func update(_ link: LinkInfo) {
        let listeners = state.withLock { state -> [AsyncStream<LinkInfo>.Continuation] in
            guard state.links[link.index] != link else { return [] }
            state.links[link.index] = link
            return state.closed ? [] : Array(state.subscribers.values)
        }
        for listener in listeners { listener.yield(link) }
    }

    /// Forgets a removed link and announces it as down.
    func remove(_ link: LinkInfo) {
        var gone = link
        gone.isUp = false
        let listeners = state.withLock { state -> [AsyncStream<LinkInfo>.Continuation] in
            guard state.links.removeValue(forKey: link.index) != nil, !state.closed else { return [] }
            return Array(state.subscribers.values)
        }
        for listener in listeners { listener.yield(gone) }
    }

    /// A stream of the changes from now on. Unbounded: link events are rare, and a dropped one would leave
    /// the speaker answering on a dead link (or silent on a live one).
    func subscribe() -> AsyncStream<LinkInfo> {
        let (stream, continuation) = AsyncStream.makeStream(of: LinkInfo.self, bufferingPolicy: .unbounded)
        let id = state.withLock { state -> Int? in
            guard !state.closed else { return nil }
            state.nextSubscriber += 1
            state.subscribers[state.nextSubscriber] = continuation
            return state.nextSubscriber
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Finishes every stream; later subscribers get an already finished one.
    func close() {
        let listeners = state.withLock { state -> [AsyncStream<LinkInfo>.Continuation] in
            state.closed = true
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        // Outside the lock: finish() runs onTermination, which takes the lock.
        for listener in listeners { listener.finish() }
    }
}
