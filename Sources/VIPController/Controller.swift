import Foundation
import Logging
import Metrics
import Synchronization
import VIPAllocation
import VIPLease
import VIPModel
import VIPStore

/// Watches the store and keeps every service's addresses right, while it holds the leader lease.
public final class Controller: Sendable {
    public struct Settings: Sendable {
        public var loadBalancerClass: String?
        public var leaseDuration: Duration = .seconds(3)
        public var renewInterval: Duration = .milliseconds(750)
        /// How often a standby looks at the lease: a released lease is taken within this, not a whole duration.
        public var standbyInterval: Duration = .milliseconds(100)
        /// Full reconcile even without changes, to heal anything a lost watch event missed.
        public var resyncInterval: Duration = .seconds(30)
        /// Writes per transaction: large applies commit in chunks, each fenced by the lease.
        public var batchSize: Int = 256
        /// Store history kept for watchers that reconnect; the leader compacts what is older. etcd keeps
        /// every revision until someone compacts, and node-lease renewals make many per second.
        public var historyRetention: Duration = .seconds(300)
        /// A node lease unchanged this long (by this controller's clock) belongs to a node that is gone
        /// for good: the leader deletes it, so decommissioned nodes do not stay in the store forever.
        public var deadNodeRetention: Duration = .seconds(3600)

        public init(loadBalancerClass: String? = nil) {
            self.loadBalancerClass = loadBalancerClass
        }
    }

    public let store: any Store
    public let settings: Settings
    public let lease: LeaderLease
    private let logger: Logger
    private let reconciler: Reconciler
    /// Beats once per lease round, for `/healthz`.
    public let heartbeat = Heartbeat()
    /// Each pass decodes only the records that changed since the last.
    private let snapshotCache = SnapshotCache(keepsDocuments: false)
    /// The running controller's passes read this instead of listing the store; `runOnce` reads the store.
    private let view: StoreView
    /// The lease term the view was last trusted in: a new term reads the store first, since the last
    /// leader's final writes may not have reached the view yet.
    private let viewTerm = Mutex(0)
    /// Pools exported last time, so a removed pool's series are removed too.
    private let exportedPools = Mutex<Set<String>>([])

    public init(store: any Store, identity: String, settings: Settings, logger: Logger) {
        self.store = store
        self.settings = settings
        self.logger = logger
        reconciler = Reconciler(loadBalancerClass: settings.loadBalancerClass)
        view = StoreView(store: store, logger: logger)
        lease = LeaderLease(store: store, identity: identity, duration: settings.leaseDuration,
                            key: Keyspace.controllerLease(for: settings.loadBalancerClass), logger: logger)
    }

    /// Takes the lease (waiting while another controller holds it), reconciles once, and releases it.
    public func runOnce(timeout: Duration = .seconds(30)) async throws -> ReconcilePlan {
        let deadline = MonotonicInstant.now() + timeout
        while !(await lease.refresh()) {
            guard MonotonicInstant.now() < deadline else { throw ControllerError.leaseHeld(timeout: timeout) }
            try await Task.sleep(for: min(settings.renewInterval, settings.standbyInterval))
        }
        // Renewed while the pass runs: a large reconcile outlives the lease duration.
        let renewal = Task { [lease, settings] in
            while !Task.isCancelled {
                try? await Task.sleep(for: settings.renewInterval)
                guard !Task.isCancelled, await lease.refresh() else { return }
            }
        }
        let result: Result<ReconcilePlan, Error>
        do { result = .success(try await reconcile()) } catch { result = .failure(error) }
        // No renewal may land after the release (it would take the released lease again).
        renewal.cancel()
        await renewal.value
        await lease.release()
        return try result.get()
    }

    /// Runs until the task is cancelled, then releases the lease.
    public func run() async throws {
        let (triggers, trigger) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.leaseLoop(trigger: trigger) }
            group.addTask { await self.view.run { trigger.yield() } }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.settings.resyncInterval)
                    // The view lists afresh, healing whatever a lost watch event missed, and the listing
                    // triggers the pass: a trigger now would read the store a second time.
                    self.view.markStale()
                }
            }
            group.addTask { await self.housekeepingLoop() }
            group.addTask {
                for await _ in triggers {
                    guard !Task.isCancelled else { break }
                    // Let a burst of changes (one apply of many objects) settle into one pass.
                    try? await Task.sleep(for: .milliseconds(20))
                    guard await self.lease.isLeader else { continue }
                    do {
                        _ = try await self.reconcile()
                    } catch ControllerError.notLeader {
                        // The lease lapsed mid-pass (a renewal slower than the lease): no lease round may
                        // notice a change of leadership, so try again after one; the guard drops it if
                        // another controller leads by then.
                        self.logger.warning("reconcile stopped: the controller lease lapsed mid-pass; retrying")
                        try? await Task.sleep(for: self.settings.renewInterval)
                        trigger.yield()
                    } catch {
                        self.logger.error("reconcile failed: \(error)")
                    }
                }
            }
            await withTaskCancellationHandler {
                await group.waitForAll()
            } onCancel: {
                trigger.finish()
            }
        }
        // The task is cancelled by now; the release must not be (a cancelled write is refused).
        await Task { [lease] in await lease.release() }.value
    }

    private func leaseLoop(trigger: AsyncStream<Void>.Continuation) async {
        var leading = false
        while !Task.isCancelled {
            heartbeat.beat()
            let now = await lease.refresh()
            if now && !leading { trigger.yield() }
            leading = now
            try? await Task.sleep(for: now ? settings.renewInterval : min(settings.renewInterval, settings.standbyInterval))
        }
    }

    /// While leading: compacts history older than the retention (noting the revision every fifth of it, and
    /// compacting through the newest note older than that, so a watcher away for less resumes without a
    /// re-list), and deletes node leases that have not changed for `deadNodeRetention`.
    private func housekeepingLoop() async {
        var marks: [(at: ContinuousClock.Instant, revision: Revision)] = []
        var nodeLeases: [String: (revision: Revision, since: ContinuousClock.Instant)] = [:]
        while !Task.isCancelled {
            try? await Task.sleep(for: min(settings.historyRetention, settings.deadNodeRetention) / 5)
            guard await lease.isLeader else {
                marks.removeAll()
                nodeLeases.removeAll()
                continue
            }
            guard let listing = try? await store.list(prefix: Keyspace.nodeLeasesPrefix) else { continue }
            let now = ContinuousClock.now
            await collectDeadNodes(listing, now: now, seen: &nodeLeases)
            marks.append((now, listing.revision))
            guard let cutoff = marks.last(where: { now - $0.at >= settings.historyRetention }) else { continue }
            marks.removeAll { now - $0.at >= settings.historyRetention }
            do {
                try await store.compact(through: cutoff.revision)
                logger.debug("compacted store history through revision \(cutoff.revision)")
            } catch {
                logger.warning("could not compact store history through revision \(cutoff.revision): \(error)")
            }
        }
    }

    /// Judged by this controller's own clock from when it first saw each lease at its revision; the delete
    /// is conditional on that revision, so a node that renews meanwhile keeps its lease.
    private func collectDeadNodes(_ listing: Listing, now: ContinuousClock.Instant,
                                  seen: inout [String: (revision: Revision, since: ContinuousClock.Instant)]) async {
        var current: [String: (revision: Revision, since: ContinuousClock.Instant)] = [:]
        for record in listing.records {
            let previous = seen[record.key]
            current[record.key] = previous?.revision == record.modRevision ? previous! : (record.modRevision, now)
        }
        seen = current
        for (key, entry) in current where now - entry.since >= settings.deadNodeRetention {
            do {
                try await store.delete(key, expecting: .modRevision(entry.revision))
                seen[key] = nil
                logger.info("deleted the node lease of \(key.dropFirst(Keyspace.nodeLeasesPrefix.count)): unchanged for \(settings.deadNodeRetention)",
                            metadata: ["node": "\(key.dropFirst(Keyspace.nodeLeasesPrefix.count))"])
            } catch {
                logger.debug("kept \(key): \(error)")
            }
        }
    }

    /// One full pass: read everything (from the view while it is current), plan, commit in fenced chunks.
    /// A conflict means someone changed what was read; the pass starts over from the store.
    @discardableResult
    public func reconcile(maxAttempts: Int = 5) async throws -> ReconcilePlan {
        let term = await lease.term
        let newTerm = viewTerm.withLock { trusted in
            defer { trusted = term }
            return trusted != term
        }
        if newTerm { view.markStale() }
        var lastError: Error?
        for _ in 0..<maxAttempts {
            let snapshot = if let mirror = view.current() {
                ClusterSnapshot.assemble(from: mirror, cache: snapshotCache)
            } else {
                try await ClusterSnapshot.load(from: store, cache: snapshotCache)
            }
            for problem in snapshot.problems { logger.warning("\(problem)") }
            let plan = reconciler.plan(snapshot, time: RecordCoding.timestamp())
            do {
                try await commit(plan)
                for decision in plan.log {
                    logger.info("\(decision)", metadata: [
                        "service": "\(decision.service.namespacedName)",
                        "ip": "\(decision.addresses.map(\.description).joined(separator: ","))",
                    ])
                }
                export(plan.poolUsage)
                return plan
            } catch StoreError.conflict(let key, let expected) {
                // Not the lease: `LeaderLease.commit` turns a lost lease into `ControllerError.deposed`.
                lastError = StoreError.conflict(key: key, expected: expected)
                logger.debug("reconcile raced on \(key); planning again from what the view now trusts")
            }
        }
        throw lastError ?? ControllerError.notLeader
    }

    /// MetalLB's allocator gauges, per pool and per family; exact counts go in as Double (a /64 is 2^64).
    private func export(_ usage: [String: PoolUsage]) {
        let families: [(String, (PoolUsage) -> AddressCount)] = [
            ("metallb_allocator_addresses_total", { $0.ipv4.total + $0.ipv6.total }),
            ("metallb_allocator_addresses_in_use_total", { $0.ipv4.inUse + $0.ipv6.inUse }),
            ("metallb_allocator_ipv4_addresses_total", { $0.ipv4.total }),
            ("metallb_allocator_ipv4_addresses_in_use_total", { $0.ipv4.inUse }),
            ("metallb_allocator_ipv6_addresses_total", { $0.ipv6.total }),
            ("metallb_allocator_ipv6_addresses_in_use_total", { $0.ipv6.inUse }),
        ]
        let gone = exportedPools.withLock { exported in
            defer { exported = Set(usage.keys) }
            return exported.subtracting(usage.keys)
        }
        for (label, value) in families {
            for (pool, counts) in usage { Gauge(label: label, dimensions: [("pool", pool)]).record(value(counts).doubleValue) }
            for pool in gone { Gauge(label: label, dimensions: [("pool", pool)]).destroy() }
        }
    }

    /// Commits the plan in fenced chunks, a few at once. Deleted assignments land before any other write:
    /// an address a deleted one frees may be assigned again in the same plan, and nobody may see it twice.
    /// Each turn of the lease holds `TransactionBatches.inFlight` chunks, so a renewal waits for one turn at most.
    private func commit(_ plan: ReconcilePlan) async throws {
        // The fence rides in every chunk; its condition counts against the store's limit like any other.
        let placeholder = Condition(Keyspace.controllerLease(for: settings.loadBalancerClass), .present)
        let releases = plan.writes.prefix { if case .delete = $0.operation { true } else { false } }
        for phase in [plan.writes[..<releases.endIndex], plan.writes[releases.endIndex...]] where !phase.isEmpty {
            let parts = phase.map { Transaction(conditions: [$0.condition], operations: [$0.operation]) }
            let chunks = TransactionBatches.runs(parts, limit: store.maxOperationsPerTransaction, shared: [placeholder],
                                                 maxParts: settings.batchSize).map { TransactionBatches.merge(parts[$0]) }
            for turn in stride(from: 0, to: chunks.count, by: TransactionBatches.inFlight) {
                let sent = Array(chunks[turn..<min(turn + TransactionBatches.inFlight, chunks.count)])
                do {
                    let revisions = try await lease.commit(together: sent)
                    view.fold(zip(sent, revisions).map { ($0.operations, $1) })
                } catch {
                    await distrustView(after: error, transactions: sent.count)
                    throw error
                }
            }
        }
    }
}

extension Controller {
    /// What a failed turn says about the view. Some of a turn may have landed unseen, so the view would not
    /// know those addresses are taken: it is listed afresh. A lone transaction that conflicted landed
    /// nothing, and the view lags where the key is: only in the events, which it does not watch, if that
    /// is where (they are relisted); a view already stale is being listed afresh anyway.
    private func distrustView(after error: any Error, transactions: Int) async {
        guard case StoreError.conflict(let key, _) = error, transactions == 1 else { return view.markStale() }
        guard view.current() != nil else { return }
        guard key.hasPrefix(Keyspace.eventsPrefix) else { return view.markStale() }
        do { try await view.relistEvents() } catch { view.markStale() }
    }
}

public enum ControllerError: Error, CustomStringConvertible, Sendable {
    case notLeader
    /// A fenced write found the lease written by another controller: leadership is gone, not a race to retry.
    case deposed
    case leaseHeld(timeout: Duration)

    public var description: String {
        switch self {
        case .notLeader: "this controller does not hold the controller lease"
        case .deposed: "another controller took the controller lease during this pass"
        case .leaseHeld(let timeout): "another controller held the controller lease for all of \(timeout)"
        }
    }
}
