import Logging
import Synchronization
import VIPModel
import VIPStore

/// What a controller pass reads (the objects, the assignments and the events), held in memory from one
/// listing and kept current by one watch per prefix (events excepted). At 10k services each pass
/// re-listed 30k records, which cost etcd about 0.5 CPU-s per pass. The controller folds its own writes
/// in as they commit, so the next pass plans from them without waiting for their echo.
///
/// Every write a pass makes is still conditioned on the revisions it read, so a view that lags only costs
/// a conflict: the pass then marks the view stale, reads the store itself, and the view is listed afresh.
///
/// Events are listed but not watched: speakers write one per VIP they take, and sending each of those to
/// the controller too (then through etcd's JSON gateway) tipped a 10k-VIP claim burst into lease lapses
/// (claimed in 15-63 s against 14-20 s). A speaker's event makes the controller's next event write for that
/// service conflict once, which lists the events afresh.
final class StoreView: Sendable {
    /// The kinds a plan reads: an address depends on pools, the service and its namespace's labels, never
    /// on backends or advertisements, whose churn (endpoints change all day) must cost a controller nothing.
    static let plannedKinds: [Kind] = [.namespace, .ipAddressPool, .service]
    static let prefixes = plannedKinds.map(Keyspace.prefix(of:)) + [Keyspace.assignmentsPrefix, Keyspace.eventsPrefix]
    static let watchedPrefixes = prefixes.filter { $0 != Keyspace.eventsPrefix }
    /// Changes under these can change a plan; assignments are the controller's own writes (or another
    /// class's), and only update the view.
    static let triggeringPrefixes = Set(plannedKinds.map(Keyspace.prefix(of:)))

    private struct State {
        var mirror: RecordMirror?
        /// Whether passes must read the store themselves: until the first listing, and from `markStale`
        /// until a listing that began after it.
        var stale = true
        /// Counts `markStale` calls, so a listing already under way when one comes does not clear it.
        var staleMarks = 0
        /// The watches of the current listing, cancelled to list afresh.
        var watches: Task<Void, any Error>?
        /// Own writes folded while a listing is under way (nil otherwise): the listing may have read their
        /// prefix before they landed, and the events prefix has no watch to bring them.
        var foldedDuringListing: [(operation: StoreOperation, revision: Revision)]?
    }

    private let store: any Store
    private let logger: Logger
    private let state = Mutex(State())

    init(store: any Store, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// The records as the view holds them, or nil while the view is stale (the caller reads the store).
    func current() -> RecordMirror? {
        state.withLock { $0.stale ? nil : $0.mirror }
    }

    /// The next pass reads the store, and the view lists afresh.
    func markStale() {
        let watches = state.withLock { state in
            state.stale = true
            state.staleMarks += 1
            return state.watches
        }
        watches?.cancel()
    }

    /// Lists the events afresh into the current view. It does not watch them, so a speaker's event makes
    /// the controller's next write to that service's history conflict: one listing of the events heals it.
    func relistEvents() async throws {
        let listing = try await store.list(prefix: Keyspace.eventsPrefix)
        state.withLock { $0.mirror?.replace(prefix: Keyspace.eventsPrefix, with: listing) }
    }

    /// Writes this controller committed, each transaction's operations at its revision. A view without
    /// them would think the addresses they took are free, and could give one out again in another chunk.
    func fold(_ committed: [(operations: [StoreOperation], revision: Revision)]) {
        state.withLock { state in
            for (operations, revision) in committed {
                for operation in operations {
                    state.mirror?.fold(operation, committedAt: revision)
                    state.foldedDuringListing?.append((operation, revision))
                }
            }
        }
    }

    /// Lists every prefix, then watches all but the events from the listing; lists again when marked
    /// stale, after a compaction, and after a watch fails (with backoff). Calls `changed` for each change
    /// that can change a plan, and after each listing. Runs until cancelled.
    func run(changed: @escaping @Sendable () -> Void) async {
        var backoff = Backoff(first: .milliseconds(100))
        while !Task.isCancelled {
            let marks = state.withLock { state in
                state.foldedDuringListing = []
                return state.staleMarks
            }
            do {
                var mirror = RecordMirror(prefixes: Self.prefixes)
                var listedAt: [String: Revision] = [:]
                for prefix in Self.prefixes {
                    let listing = try await store.list(prefix: prefix)
                    mirror.replace(prefix: prefix, with: listing)
                    listedAt[prefix] = listing.revision
                }
                state.withLock { state in
                    for (operation, revision) in state.foldedDuringListing ?? [] { mirror.fold(operation, committedAt: revision) }
                    state.foldedDuringListing = nil
                    state.mirror = mirror
                    state.stale = state.staleMarks != marks
                }
                // Started only once the view holds the listing, so no event goes to the one it replaced.
                let watches = Task { [self] in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for prefix in Self.watchedPrefixes {
                            let after = listedAt[prefix] ?? 0
                            group.addTask {
                                let triggers = Self.triggeringPrefixes.contains(prefix)
                                for try await event in self.store.watch(prefix: prefix, after: after) {
                                    let moved = self.state.withLock { $0.mirror?.apply(event) ?? false }
                                    if moved && triggers { changed() }
                                }
                                try Task.checkCancellation()
                                throw StoreError.unavailable("the watch on \(prefix) ended")
                            }
                        }
                        try await group.next()
                    }
                }
                let stillStale = state.withLock { state in
                    state.watches = watches
                    return state.stale || Task.isCancelled
                }
                if stillStale { watches.cancel() }
                if backoff.isRetrying { logger.info("the controller's watch recovered; listed afresh") }
                backoff.reset()
                changed()
                try await withTaskCancellationHandler {
                    try await watches.value
                } onCancel: {
                    watches.cancel()
                }
            } catch {
                state.withLock { state in
                    state.stale = true
                    state.foldedDuringListing = nil
                }
                // Marked stale, the controller stopping, or a compaction: list again at once (or end).
                if error is CancellationError { continue }
                if case StoreError.compacted = error { continue }
                if !backoff.isRetrying { logger.warning("the controller's watch failed: \(error); listing again with backoff") }
            }
            try? await Task.sleep(for: backoff.next())
        }
        state.withLock { $0.watches = nil }
    }
}
