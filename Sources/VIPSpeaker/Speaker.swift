import Foundation
import Logging
import Metrics
import VIPAnnounce
import VIPForwarding
import VIPHealthCheck
import VIPLease
import VIPLink
import VIPModel
import VIPStore

/// One node's speaker: keeps its node lease, claims the VIPs it should announce, answers for them through
/// the responder while (and only while) its lease is live, and hands them over on shutdown.
public actor Speaker {
    public struct Settings: Sendable {
        public var node: String
        /// The interfaces this speaker may use (`--interface`).
        public var interfaces: [String]
        public var labels: [String: String]
        /// Failover is bounded by this: a dead node's VIPs are taken once its lease expires.
        public var leaseDuration: Duration = .milliseconds(200)
        public var renewInterval: Duration = .milliseconds(50)
        /// Offsets of the unsolicited announcements after taking a VIP.
        public var announcementSchedule: [Duration] = [.zero, .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(2)]
        /// A full decision pass even without changes, built from memory: the watch keeps the objects current.
        public var resyncInterval: Duration = .seconds(10)

        public init(node: String, interfaces: [String], labels: [String: String] = [:]) {
            self.node = node
            self.interfaces = interfaces
            self.labels = labels
        }
    }

    public nonisolated let settings: Settings
    public nonisolated let table: AnswerTable
    /// Beats once per renewal round, for `/healthz`.
    public nonisolated let heartbeat = Heartbeat()
    private let store: any Store
    private let interfaceSource: any InterfaceSource
    private let responder: any Responder
    private let logger: Logger

    private let renewer: NodeLeaseRenewer
    /// Other nodes' leases, as observed.
    private var observed: [String: ObservedNode] = [:]
    /// Nodes judged live: what every decision uses. A node joins as soon as its lease is seen, and leaves
    /// when the lease is deleted or when the expiry check judges it run out (see `expiryLoop`).
    private var liveAtLastCheck: Set<String> = []
    /// The newest store revision the watch has brought (or the listing it started from).
    private var watchedThrough: Revision = 0
    private var claims: [IPAddress: StoredClaim] = [:]
    /// The claim cache holds every claim write up to this revision: from the last listing and the watch.
    private var claimsSeenThrough: Revision = 0
    private var snapshot: ClusterSnapshot?
    /// Bumped on every snapshot load, so the plans can tell whether the objects changed.
    private var snapshotLoads = 0
    /// The last pass's plans and what they came from: a pass with the same snapshot and node statuses
    /// (a claim write, an own-claim echo) reuses them instead of regrouping and ranking every VIP.
    private var planCache: (snapshotLoad: Int, nodes: Set<NodeStatus>, plans: [GroupPlan])?
    /// Group key -> table epoch in which this node wrote or confirmed the group's claims.
    private var confirmed: [IPAddress: UInt64] = [:]
    /// Groups whose next confirm must announce (the interface's MAC changed while they were held).
    private var burstOwed: Set<IPAddress> = []
    private var local: [String: LinkInfo] = [:]
    private var trigger: AsyncStream<Void>.Continuation?
    private let dataPath: DataPath?
    /// The forwarding inputs of the current snapshot (nil until the first load).
    private var inputs: ForwardingInputs?
    /// What the kernel holds, as last committed: changes are computed against it, never by re-listing the ruleset.
    /// nil until the first transaction, which replaces whatever a crashed predecessor left.
    private var programmed: ForwardingState?
    private var forwardingDirty = true
    /// Why the last data-path transaction failed, for `/readyz`; nil when the kernel holds the desired state.
    private var forwardingProblem: String?
    /// Local-policy services this node cannot serve (all local endpoints fail checks), published in the node lease.
    private var unservable: Set<ObjectKey> = []
    /// The move and health history, written batched in the background.
    private let events: ServiceEventWriter
    /// The objects and assignments, kept by the watch: a pass builds its snapshot from memory, never from the store.
    private var mirror = RecordMirror(prefixes: Speaker.objectPrefixes)
    /// Bumped by every listing and every event that changed the mirror; the snapshot is rebuilt only when it moved.
    private var mirrorChanges = 0
    private var assembledChanges = -1
    /// A rebuild (after an object change or a re-listing) decodes only the records that changed.
    private let snapshotCache = SnapshotCache(keepsDocuments: false)

    public init(store: any Store, settings: Settings, interfaces: any InterfaceSource, responder: any Responder,
                table: AnswerTable = AnswerTable(), dataPath: DataPath? = nil, logger: Logger) {
        self.store = store
        self.dataPath = dataPath
        self.settings = settings
        self.interfaceSource = interfaces
        self.responder = responder
        self.table = table
        self.logger = logger
        renewer = NodeLeaseRenewer(settings: settings, store: store, table: table, logger: logger)
        events = ServiceEventWriter(store: store, logger: logger)
    }

    static let objectPrefixes = Kind.allCases.map(Keyspace.prefix(of:)) + [Keyspace.assignmentsPrefix]

    // MARK: running

    /// Runs until cancelled; then falls silent and releases everything at once.
    public func run() async throws {
        for interface in interfaceSource.current() where settings.interfaces.contains(interface.name) {
            local[interface.name] = interface
            if interface.isUp { openResponder(interface) }
        }
        for missing in settings.interfaces where local[missing] == nil {
            logger.warning("interface \(missing) not found; waiting for it to appear")
        }
        publishLeaseContent()
        let (triggers, trigger) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.trigger = trigger
        let renewals = ThreadTaskExecutor()
        await withTaskGroup(of: Void.self) { group in
            group.addTask(executorPreference: renewals) { await self.renewLoop(on: renewals) }
            group.addTask { await self.expiryLoop() }
            group.addTask { await self.interfaceLoop() }
            if let health = dataPath?.health {
                group.addTask {
                    for await transition in health.transitions {
                        if Task.isCancelled { break }
                        await self.healthChanged(transition)
                    }
                }
            }
            group.addTask { await self.watchLoop() }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.settings.resyncInterval)
                    await self.poke()
                }
            }
            group.addTask {
                for await _ in triggers {
                    if Task.isCancelled { break }
                    await self.reconcile()
                }
            }
            let table = table
            await withTaskCancellationHandler {
                await group.waitForAll()
            } onCancel: {
                // Silent the moment shutdown starts, before any task has wound down.
                table.silence()
                trigger.finish()
            }
        }
        await renewals.shutdown()
        // The task is cancelled by now; the release must not be (a cancelled write is refused).
        await Task { await self.shutdown() }.value
    }

    private func poke() { trigger?.yield() }

    // MARK: node lease

    /// Starts a renewal every `renewInterval`, one at a time, off the actor. A renewal still running a lease
    /// duration after it started is worthless (this node is silent by then): it is cancelled and the next one
    /// starts, so a store member that hangs (an etcd election) never holds renewals up. The loop's sleep is
    /// the only timer: a timeout per renewal cost an idle speaker more wake-ups than the renewal itself.
    /// The loop and its renewals run on `executor`, a thread of their own, so that a busy cooperative pool
    /// never delays a renewal past the lease's slack.
    private nonisolated func renewLoop(on executor: ThreadTaskExecutor) async {
        var current: (id: Int, task: Task<Void, Never>, startedAt: MonotonicInstant)?
        while !Task.isCancelled {
            heartbeat.beat()
            let now = MonotonicInstant.now()
            if let running = current, renewer.isInFlight(running.id) {
                if now - running.startedAt < settings.leaseDuration {
                    try? await Task.sleep(for: settings.renewInterval)
                    continue
                }
                running.task.cancel()
            }
            let id = (current?.id ?? 0) + 1
            renewer.start(id)
            current = (id, Task(executorPreference: executor) { [renewer] in await self.renewed(await renewer.renew(id)) }, now)
            try? await Task.sleep(for: settings.renewInterval)
        }
        // Nothing may renew after the loop ends: shutdown releases the lease next.
        current?.task.cancel()
        await current?.task.value
    }

    /// The speaker's part of a renewal: most need none, and never wait for the actor.
    private nonisolated func renewed(_ outcome: NodeLeaseRenewer.Outcome) async {
        switch outcome {
        case .renewed(first: false), .failed: return
        case .renewed(first: true):
            // A reconcile that ran before this first renewal did nothing; it must run again now.
            await poke()
        case .lapsedAndRenewed(let now):
            await lapsed(at: now)
        }
    }

    private func lapsed(at now: MonotonicInstant) {
        confirmed.removeAll()
        // This node could not see the store either: the others' leases only look unchanged. Give each a full
        // duration from now, so owners re-prove their claims instead of losing them to a race.
        for node in observed.keys { observed[node]?.observer.restartClock(at: now) }
        poke()
    }

    /// What the node lease says of this node: its interfaces, and the services it cannot serve.
    private func publishLeaseContent() {
        renewer.set(NodeLeaseRenewer.Content(
            interfaces: settings.interfaces.map { name in NodeInterface(name: name, up: local[name]?.isUp ?? false, mac: local[name]?.mac) },
            unservable: Array(unservable)))
    }

    /// A renewal out of turn, so peers learn of a change at once; bounded by the lease like the loop's.
    private func renewNow() async {
        publishLeaseContent()
        if let outcome = try? await Self.within(settings.leaseDuration, { [renewer] in await renewer.renew(nil) }) {
            await renewed(outcome)
        }
    }

    /// Runs `body`, cancelling it and throwing `StoreError.unavailable` if it takes longer than `limit`.
    static func within<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let result = first else {
                throw StoreError.unavailable("no answer within \(limit.milliseconds) ms")
            }
            return result
        }
    }

    // MARK: watching

    /// What a key under the speaker's single watch is to it. Everything else (events/, leases/controller)
    /// is dropped by prefix, before any decoding.
    enum WatchedKind: Equatable {
        case claim, nodeLease, object
    }

    static func watchedKind(of key: String) -> WatchedKind? {
        // Byte-wise, as the stores match prefixes (and cheaper than `hasPrefix`, which compares characters).
        func under(_ prefix: String) -> Bool { key.utf8.starts(with: prefix.utf8) }
        if under(Keyspace.claimsPrefix) { return .claim }
        if under(Keyspace.nodeLeasesPrefix) { return .nodeLease }
        return objectPrefixes.contains(where: under) ? .object : nil
    }

    /// List, then one watch over the whole keyspace from the listing's revision; re-list when the store
    /// compacted past it. One stream per speaker, not one per prefix: on etcd each is a connection held
    /// open on the member, which is what a fleet pays for. While the store is unreachable the last view
    /// stands (the lease fence keeps answers safe) and retries back off.
    ///
    /// The listing reads node leases first, then claims, then the objects into a fresh mirror, and the
    /// watch starts after the first listing's revision: nothing is missed, and what a listing already
    /// holds comes again only at a revision already known, which `absorbClaim` and the mirror ignore.
    private func watchLoop() async {
        var after: Revision = 0
        var listed = false
        var backoff = Backoff(first: .milliseconds(100))
        while !Task.isCancelled {
            do {
                if !listed {
                    let leases = try await store.list(prefix: Keyspace.nodeLeasesPrefix)
                    let claimListing = try await store.list(prefix: Keyspace.claimsPrefix)
                    var objects = RecordMirror(prefixes: Self.objectPrefixes)
                    for prefix in Self.objectPrefixes { objects.replace(prefix: prefix, with: try await store.list(prefix: prefix)) }
                    if backoff.isRetrying { logger.info("watch recovered; re-listed at revision \(leases.revision)") }
                    backoff.reset()
                    absorb(leases: leases, claims: claimListing, objects: objects)
                    after = leases.revision
                    watchedThrough = after
                    listed = true
                }
                for try await event in store.watch(prefix: "", after: after) {
                    after = max(after, event.revision)
                    absorb(event: event)
                    watchedThrough = after
                }
                backoff.reset()  // ended without an error: watch again soon, from where it stopped
            } catch StoreError.compacted {
                listed = false
                continue
            } catch {
                if !backoff.isRetrying { logger.warning("watch failed: \(error); keeping the last view, retrying with backoff") }
                listed = false
            }
            try? await Task.sleep(for: backoff.next())
        }
    }

    /// A (re)listing: the claims and the objects replace the cached ones, and the node leases are observed.
    private func absorb(leases: Listing, claims claimListing: Listing, objects: RecordMirror) {
        for record in leases.records { absorbNodeLease(key: record.key, record: record) }
        // Seen just now: live, before any decision could count them out.
        let now = MonotonicInstant.now()
        for node in observed.keys where isLive(node, at: now) { liveAtLastCheck.insert(node) }
        claims = [:]
        for record in claimListing.records { absorbClaim(key: record.key, record: record) }
        claimsSeenThrough = claimListing.revision
        mirror = objects
        mirrorChanges += 1
        watchListings += 1
        poke()
    }

    /// How many times the watch (re)listed: once at start, once more after each compaction or watch error.
    public private(set) var watchListings = 0

    private func absorb(event: WatchEvent) {
        // The watch delivers in revision order: every claim write up to this event's revision has come.
        claimsSeenThrough = max(claimsSeenThrough, event.revision)
        switch Self.watchedKind(of: event.key) {
        case .claim?:
            var changed = false
            switch event {
            case .put(let record): changed = absorbClaim(key: record.key, record: record)
            case .delete(let key, let revision):
                if let address = ClaimPlanner.address(ofClaimKey: key),
                   let current = claims[address], current.revision < revision {
                    claims[address] = nil
                    changed = true
                }
            }
            // This node's own writes are folded in at commit: their echo changes nothing and starts no pass.
            if changed { poke() }
        case .nodeLease?:
            let key = event.key
            let node = String(key.dropFirst(Keyspace.nodeLeasesPrefix.count))
            guard node != settings.node else { return }
            let before = observed[node]?.lease
            let wasLive = liveAtLastCheck.contains(node)
            switch event {
            case .put(let record): absorbNodeLease(key: key, record: record)
            case .delete:
                var entry = observed[node] ?? ObservedNode()
                entry.observer.observe(record: nil, revision: nil, at: .now())
                entry.lease = nil
                entry.value = nil
                observed[node] = entry
            }
            let after = observed[node]?.lease
            let isLive = isLive(node, at: .now())
            // A renewal moves only the renew time: O(1), no pass. Liveness changes come from the expiry clock.
            if !Self.sameStatus(before, after) || wasLive != isLive {
                if isLive { liveAtLastCheck.insert(node) } else { liveAtLastCheck.remove(node) }
                poke()
            }
        case .object?:
            guard mirror.apply(event) else { return }
            mirrorChanges += 1
            poke()
        case nil:
            return  // events/, leases/controller and anything else: not the speaker's business
        }
    }

    /// Returns whether the claim is news (not already known at this or a later revision).
    @discardableResult
    private func absorbClaim(key: String, record: Record) -> Bool {
        guard let address = ClaimPlanner.address(ofClaimKey: key) else { return false }
        // A claim already held at this revision (a re-listing, an echo) is not decoded again.
        if let current = claims[address], current.revision >= record.modRevision { return false }
        guard let claim = try? RecordCoding.decode(Claim.self, from: record.value) else { return false }
        claims[address] = StoredClaim(claim: claim, revision: record.modRevision)
        return true
    }

    /// Whether two views of a node lease agree on everything but liveness: labels, interfaces, their
    /// state and MACs, and the Local services the node cannot serve. The renew time is left out on purpose.
    static func sameStatus(_ lhs: NodeLease?, _ rhs: NodeLease?) -> Bool {
        guard let lhs, let rhs else { return lhs == nil && rhs == nil }
        return lhs.node == rhs.node && lhs.labels == rhs.labels && lhs.interfaces == rhs.interfaces
            && lhs.unservable == rhs.unservable
    }

    private func absorbNodeLease(key: String, record: Record) {
        let node = String(key.dropFirst(Keyspace.nodeLeasesPrefix.count))
        guard node != settings.node else { return }
        var entry = observed[node] ?? ObservedNode()
        // Renew times have second precision, so most renewals write the bytes of the one before: those are
        // not decoded again (decoding was a tenth of an idle speaker's CPU).
        if entry.value != record.value {
            entry.lease = try? RecordCoding.decode(NodeLease.self, from: record.value)
            entry.value = record.value
        }
        entry.observer.observe(record: entry.lease?.lease, revision: record.modRevision, at: .now())
        observed[node] = entry
    }

    private func status(of lease: NodeLease) -> NodeStatus {
        NodeStatus(name: lease.node, labels: lease.labels, upInterfaces: Set(lease.upInterfaces),
                   unservable: Set(lease.unservable ?? []))
    }

    private func isLive(_ node: String, at now: MonotonicInstant) -> Bool {
        guard let entry = observed[node], entry.lease != nil else { return false }
        if case .held = entry.observer.state(at: now) { return true }
        return false
    }

    /// How many times a peer was judged to have run out of lease, for tests.
    public private(set) var peersJudgedExpired = 0

    /// Sleeps until the next observed lease would expire, and reconciles when one did.
    ///
    /// A lease that ran out by this node's clock may only look so because the watch lags behind the store
    /// (this process busy, the store slow to send): the renewals may be on their way. So a lease is judged
    /// at an instant the watch is known to be current for: the start of a read, once the watch has brought
    /// the read's revision. A busy observer then never counts a live peer out, which moved VIPs for nothing
    /// in a fleet of 30 speakers on two cores; a real expiry costs one read more.
    private func expiryLoop() async {
        while !Task.isCancelled {
            var at = MonotonicInstant.now()
            if liveAtLastCheck.contains(where: { !isLive($0, at: at) }) {
                guard let current = await watchIsCurrent() else {
                    try? await Task.sleep(for: settings.renewInterval)
                    continue
                }
                at = current
            }
            var next = at + .seconds(1)
            var live: Set<String> = []
            for (node, entry) in observed {
                if case .held(_, let remaining) = entry.observer.state(at: at), entry.lease != nil {
                    live.insert(node)
                    next = min(next, at + remaining)
                }
            }
            if live != liveAtLastCheck {
                for gone in liveAtLastCheck.subtracting(live) {
                    logger.info("node \(gone) lease expired")
                    peersJudgedExpired += 1
                }
                liveAtLastCheck = live
                poke()
            }
            try? await Task.sleep(for: max(next - .now(), .milliseconds(1)))
        }
    }

    /// An instant the watch is current for: a read's start, once the watch has brought the read's revision.
    /// nil when the read fails or the watch does not get there within a lease duration (it is down or far
    /// behind; judging then would be judging blind).
    private func watchIsCurrent() async -> MonotonicInstant? {
        let asked = MonotonicInstant.now()
        guard let revision = try? await store.list(prefix: Keyspace.nodeLease(settings.node)).revision else { return nil }
        let deadline = MonotonicInstant.now() + settings.leaseDuration
        while watchedThrough < revision {
            guard MonotonicInstant.now() < deadline, !Task.isCancelled else { return nil }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return asked
    }

    // MARK: interfaces

    private func interfaceLoop() async {
        for await change in interfaceSource.changes() {
            guard settings.interfaces.contains(change.name) else { continue }
            let previous = local[change.name]
            local[change.name] = change
            if change.isUp && previous?.isUp != true {
                logger.info("interface \(change.name) is up")
                openResponder(change)
            } else if !change.isUp && previous?.isUp != false {
                logger.info("interface \(change.name) is down; releasing what it carried")
                withdraw(interface: change.index)
                responder.close(change.name)
            } else if change.mac != previous?.mac {
                logger.info("interface \(change.name) changed its MAC to \(change.mac.map { "\($0)" } ?? "none")")
                if change.isUp { openResponder(change) }
                // Answers must carry the new MAC, and neighbours must hear of it: re-announce.
                burstOwed.formUnion(confirmed.keys)
                confirmed.removeAll()
            }
            await renewNow()
            poke()
        }
    }

    private func openResponder(_ interface: LinkInfo) {
        do {
            try responder.open(interface)
        } catch {
            logger.error("cannot answer on \(interface.name): \(error)")
        }
    }

    /// Stops answering on an interface at once, before any store round trip; the reconcile that follows
    /// confirms the claims with the interfaces left, or releases them when none are.
    private func withdraw(interface index: Int32) {
        table.withdraw(interfaceIndex: index)
    }

    // MARK: reconciling

    /// How many decision passes (`reconcile`) ran: what idle cost comes down to, counted for tests.
    public private(set) var decisionPasses = 0

    /// Decides and acts: take, confirm, keep, release, clean up. Runs on every relevant change.
    func reconcile() async {
        decisionPasses += 1
        let started = MonotonicInstant.now()
        defer { logger.trace("reconciled in \((MonotonicInstant.now() - started).nanosecondsClamped / 1000) µs") }
        if mirror.isComplete, mirrorChanges != assembledChanges {
            assembledChanges = mirrorChanges
            // Off the actor: at 10k services a rebuild takes tens of milliseconds, and renewals must not wait.
            let (mirror, cache) = (mirror, snapshotCache)
            let assembled = await Task.detached { ClusterSnapshot.assemble(from: mirror, cache: cache) }.value
            // A re-listing that finds every record as it was keeps the plans and the rules: at 10k VIPs new
            // plans cost a long pass, for nothing.
            if snapshot == nil || snapshotCache.lastLoadChanged {
                snapshot = assembled
                snapshotLoads += 1
                inputs = ForwardingInputs(assembled)
                forwardingDirty = true
                await Task.yield()
            }
        }
        // Rules first and whatever the lease says: every node programs every VIP it may carry, so a takeover
        // needs only the ARP/NDP move.
        if let dataPath, let inputs, forwardingDirty { await program(inputs, dataPath) }
        guard let snapshot, let inputs, let myRevision = renewer.revision, !table.isLapsed() else { return }
        let epoch = table.epoch
        var nodes = [NodeStatus(name: settings.node, labels: settings.labels,
                                upInterfaces: Set(local.values.filter(\.isUp).map(\.name)), unservable: unservable)]
        var views: [String: NodeView] = [settings.node: NodeView(live: true, leaseRevision: myRevision)]
        for (node, entry) in observed {
            let live = liveAtLastCheck.contains(node) && entry.lease != nil
            views[node] = NodeView(live: live, leaseRevision: entry.observer.revision)
            if live, let lease = entry.lease { nodes.append(status(of: lease)) }
        }
        let (plans, fresh) = plans(for: snapshot, inputs: inputs, nodes: nodes)
        // Long passes (10k VIPs) let the renewal in between their phases: a renewal that waits for the actor
        // past its lease's slack lapses the node.
        if fresh { await Task.yield() }
        // Who checks what follows from the plans alone: only new plans can change it.
        if fresh, let health = dataPath?.health {
            await health.update(targets: inputs.healthTargets(node: settings.node, plans: plans))
        }
        let current = Set(confirmed.filter { $0.value == epoch }.keys)
        let actions = ClaimPlanner.decide(me: settings.node, plans: plans, claims: claims, nodes: views,
                                          confirmed: current, wallTime: RecordCoding.timestamp())
        await Task.yield()
        var wanted: Set<IPAddress> = []
        var writes: [ClaimWrite] = []
        for action in actions {
            switch action {
            case .announce(let group, let interfaces):
                wanted.formUnion(group.addresses)
                table.announce(group.addresses, on: interfaceMap(interfaces), epoch: epoch)
            case .take(let group, let interfaces, let transaction), .confirm(let group, let interfaces, let transaction):
                let previous = Set(group.addresses.compactMap { claims[$0]?.claim.node }).subtracting([settings.node]).sorted()
                var isTake = false
                if case .take = action { isTake = true }
                writes.append(ClaimWrite(group: group, interfaces: interfaces, transaction: transaction,
                                         isTake: isTake, previous: previous))
            case .release(let group, let addresses, let transaction):
                // Silent first, then give the claim up: never two answering.
                table.withdraw(addresses)
                if let group {
                    confirmed[group.key] = nil
                    burstOwed.remove(group.key)
                }
                logger.info("releasing \(addresses.map(\.description).joined(separator: ","))",
                            metadata: group.map(metadata) ?? ["ip": "\(addresses.map(\.description).joined(separator: ","))"])
                if await commit(transaction) {
                    Counter(label: "metalvip_ownership_transitions_total", dimensions: [("node", settings.node), ("direction", "released")]).increment()
                }
            case .cleanup(_, let transaction):
                _ = await commit(transaction)
            }
        }
        // Claims go in chunks, so a node that takes over thousands of VIPs writes a handful of
        // transactions, not thousands; a chunk that conflicts is retried group by group.
        let parts = writes.map(\.transaction)
        let runs = TransactionBatches.runs(parts, limit: store.maxOperationsPerTransaction, maxParts: Self.claimChunk)
        // Several chunks are in flight at once where the store gains by it: etcd syncs its log once for all
        // the writes waiting, so chunks sent together cost about one sync, and one after another one each.
        let together = max(1, store.transactionsInFlight)
        for wave in stride(from: 0, to: runs.count, by: together) {
            // Past the lease deadline every write is refused anyway; stop taking the store's lock for them.
            // Shutting down, the writes fail and `shutdown()` releases what was claimed.
            if table.isLapsed() || Task.isCancelled { break }
            let waveRuns = runs[wave..<min(wave + together, runs.count)]
            let attempts = waveRuns.map { $0.count > 1 ? TransactionBatches.merge(parts[$0], durability: .volatile) : parts[$0.lowerBound] }
            let outcomes = await TransactionBatches.commit(attempts, to: store, continuingPastFailures: true, inFlight: together)
            for (run, (attempt, outcome)) in zip(waveRuns, zip(attempts, outcomes)) {
                let chunk = writes[run]
                var committed: [ClaimWrite] = []
                switch outcome {
                case .success(let revision)?:
                    absorbCommitted(attempt, at: revision)
                    committed = Array(chunk)
                case .failure(let error)?:
                    await commitFailed(error)
                    if chunk.count > 1 {
                        for write in chunk where await commit(write.transaction) { committed.append(write) }
                    }
                case nil:
                    break  // not sent: cannot be, since the wave continues past failures
                }
                for write in committed {
                    wanted.formUnion(write.group.addresses)
                    answer(write, epoch: epoch)
                }
            }
        }
        // Anything still in the table that no decision kept (group changed shape, say) goes.
        table.withdraw(table.addresses.filter { !wanted.contains($0) })
        announced = plans.map(\.group).filter { $0.addresses.allSatisfy(wanted.contains) }
    }

    /// A claim write that landed: the group is answered for from now on (unless the table lapsed since
    /// `epoch`), and a take is news to the neighbours, the metrics and the move history.
    private func answer(_ write: ClaimWrite, epoch: UInt64) {
        confirmed[write.group.key] = epoch
        guard table.announce(write.group.addresses, on: interfaceMap(write.interfaces), epoch: epoch) else { return }
        // A take, a claim rewritten (other interfaces) or a new MAC is news to neighbours. A claim only
        // re-proven after a lapse is not: nobody else could claim it meanwhile, so nobody else answered,
        // and a burst per VIP after every lapse at 10k VIPs kept speakers too busy to renew.
        let owed = burstOwed.remove(write.group.key) != nil
        if write.isTake || !write.transaction.operations.isEmpty || owed {
            announceBurst(write.group.addresses, interfaces: write.interfaces)
        }
        if write.isTake {
            let from = write.previous.isEmpty ? "" : " from \(write.previous.joined(separator: ","))"
            logger.info("took \(write.group.addresses.map(\.description).joined(separator: ",")) on \(write.interfaces.joined(separator: ","))\(from)",
                        metadata: metadata(write.group))
            Counter(label: "metalvip_ownership_transitions_total", dimensions: [("node", settings.node), ("direction", "acquired")]).increment()
            // Failover as the taker saw it: from the dead holder's last renewal it observed to the claim.
            for holder in write.previous {
                if let seen = observed[holder]?.observer.changedAt, !liveAtLastCheck.contains(holder) {
                    Timer(label: "metalvip_failover_duration_seconds", dimensions: [("node", settings.node)])
                        .recordNanoseconds((MonotonicInstant.now() - seen).nanosecondsClamped)
                }
            }
            recordMove(write.group, from: write.previous.first)
        }
    }

    /// The groups and their candidates, recomputed only when the objects or a node's status changed.
    /// `fresh` is false when the cached plans were reused.
    private func plans(for snapshot: ClusterSnapshot, inputs: ForwardingInputs,
                       nodes: [NodeStatus]) -> (plans: [GroupPlan], fresh: Bool) {
        let statuses = Set(nodes)
        if let planCache, planCache.snapshotLoad == snapshotLoads, planCache.nodes == statuses { return (planCache.plans, false) }
        let plans = AnnouncementPlanner.plan(AnnouncementPlanner.groups(in: snapshot), snapshot: snapshot, nodes: nodes,
                                             localEndpointNodes: inputs.localEndpointNodes)
        planCache = (snapshotLoads, statuses, plans)
        return (plans, true)
    }

    /// The groups this node answered for after its last decision pass.
    private var announced: [VIPGroup] = []

    /// Service and address of everything this node announces, for `metallb_speaker_announced`.
    public func announcements() -> [(service: ObjectKey, address: IPAddress)] {
        announced.flatMap { group in group.services.flatMap { service in group.addresses.map { (service, $0) } } }
    }

    /// Log fields for a group: its addresses and services.
    private func metadata(_ group: VIPGroup) -> Logger.Metadata {
        ["ip": "\(group.addresses.map(\.description).joined(separator: ","))",
         "service": "\(group.services.map(\.namespacedName).joined(separator: ","))"]
    }

    /// Groups claimed in one transaction at most. Small, because every writer on the file store shares one lock:
    /// at 256 a chunk held it for 130-180 ms (a record file costs about half a millisecond there), and the
    /// node-lease renewals of every speaker queued behind chunks until their leases lapsed.
    static let claimChunk = 32

    /// A take or confirm waiting to be committed.
    struct ClaimWrite {
        var group: VIPGroup
        var interfaces: [String]
        var transaction: Transaction
        var isTake: Bool
        /// Nodes that held the group before, for the move history.
        var previous: [String]
    }

    /// Commits and folds the result into the claim cache at once (see `absorbCommitted`).
    private func commit(_ transaction: Transaction) async -> Bool {
        do {
            absorbCommitted(transaction, at: try await store.commit(transaction))
            return true
        } catch {
            await commitFailed(error)
            return false
        }
    }

    /// Folds a committed write into the claim cache, ahead of the watch event. The answer can come after the
    /// watch has brought this write and newer ones (the actor serves the watch while it waits); then the cache
    /// is already right, and folding in the older write would roll it back, so that every later take of the
    /// address conflicted with what is stored.
    private func absorbCommitted(_ transaction: Transaction, at revision: Revision) {
        for operation in transaction.operations where revision > claimsSeenThrough {
            guard let address = ClaimPlanner.address(ofClaimKey: operation.key) else { continue }
            switch operation {
            case .put(_, let value):
                if let claim = try? RecordCoding.decode(Claim.self, from: value) {
                    claims[address] = StoredClaim(claim: claim, revision: revision)
                }
            case .delete:
                claims[address] = nil
            }
        }
    }

    /// After a refused write: a conflict reads the key back; either way another pass follows.
    private func commitFailed(_ error: any Error) async {
        if let error = error as? StoreError, case .conflict(let key, _) = error {
            // Someone moved first; look again with what the watch brings, and with the key read back.
            await readBack(key)
        } else if !Task.isCancelled {
            // A write cut short by shutdown is expected, not news.
            logger.warning("store write failed: \(error)")
        }
        poke()
    }

    /// A conflict means the store holds something this node's view lacks, which the watch normally brings
    /// within milliseconds. The key is read back too, so that a view gone stale (an event lost, an old write
    /// folded in late) heals, instead of every later write resting on it conflicting forever.
    private func readBack(_ key: String) async {
        let seen = claimsSeenThrough
        let record: Record?
        do { record = try await store.get(key) } catch { return }
        // The watch moved meanwhile: it is alive, and what it brought may be newer than this read.
        guard claimsSeenThrough == seen else { return }
        switch Self.watchedKind(of: key) {
        case .claim?:
            guard let address = ClaimPlanner.address(ofClaimKey: key) else { return }
            // What the store holds now replaces the cached claim, even one with a higher revision.
            claims[address] = nil
            if let record { absorbClaim(key: key, record: record) }
        case .nodeLease?:
            // A delete's revision only matters for claims.
            absorb(event: record.map { .put($0) } ?? .delete(key: key, revision: 0))
        case .object?, nil:
            return
        }
    }

    private func interfaceMap(_ names: [String]) -> [Int32: MACAddress] {
        var map: [Int32: MACAddress] = [:]
        for name in names {
            if let interface = local[name], interface.isUp, let mac = interface.mac { map[interface.index] = mac }
        }
        return map
    }

    /// Unsolicited announcements after a takeover, on the schedule; each checks the claim is still ours.
    private func announceBurst(_ addresses: [IPAddress], interfaces: [String]) {
        let targets = interfaces.compactMap { local[$0] }.filter(\.isUp)
        let schedule = settings.announcementSchedule
        let table = table
        let responder = responder
        Task.detached {
            let start = ContinuousClock.now
            for offset in schedule {
                try? await Task.sleep(until: start + offset, clock: .continuous)
                for address in addresses where table.holds(address) {
                    for interface in targets { responder.announce(address, on: interface) }
                }
            }
        }
    }

    /// The move history, as events on each service of the group.
    private func recordMove(_ group: VIPGroup, from previous: String?) {
        let message = "announcing from node \"\(settings.node)\" with protocol \"layer2\"" + (previous.map { " (was \"\($0)\")" } ?? "")
        recordEvent(.nodeAssigned, message, on: group.services)
    }

    private func recordEvent(_ reason: EventReason, _ message: String, on services: [ObjectKey], endpoint: String? = nil) {
        events.record(reason, message, on: services, endpoint: endpoint)
    }

    // MARK: data path

    /// Brings the kernel to the state the snapshot and health ask for, in one transaction touching only what
    /// changed since the last one that committed.
    private func program(_ inputs: ForwardingInputs, _ dataPath: DataPath) async {
        forwardingDirty = false
        let unhealthy = await dataPath.health?.unhealthy() ?? [:]
        let desired = ForwardingPlanner.plan(services: inputs.services, assignments: inputs.assignments,
                                             backends: inputs.backends, node: settings.node, unhealthy: unhealthy)
        let update = programmed.map { desired.update(from: $0) } ?? desired.replacement()
        let nowUnservable = inputs.unservable(node: settings.node, unhealthy: unhealthy)
        if nowUnservable != unservable {
            unservable = nowUnservable
            await renewNow()  // peers learn at once that this node gives the VIP up
        }
        guard !update.isEmpty else {
            programmed = desired
            return
        }
        let started = MonotonicInstant.now()
        do {
            try await dataPath.applier.apply(update)
            let elapsed = MonotonicInstant.now() - started
            Timer(label: "metalvip_dataplane_update_duration_seconds", dimensions: [("node", settings.node)])
                .recordNanoseconds(elapsed.nanosecondsClamped)
            if programmed == nil || forwardingProblem != nil {
                logger.info("data path programmed: \(desired.services.count) services in \(elapsed.milliseconds) ms")
            } else {
                logger.debug("data path updated: \(update.changedServices) services in \(elapsed.nanosecondsClamped / 1000) µs")
            }
            programmed = desired
            forwardingProblem = nil
        } catch {
            // The kernel keeps its last state; the next pass (at the latest the resync) tries again from it.
            if forwardingProblem == nil { logger.error("cannot program the data path: \(error)") }
            forwardingProblem = "\(error)"
            forwardingDirty = true
        }
    }

    private func healthChanged(_ transition: HealthTransition) {
        let target = transition.target
        let message = "endpoint \(target.endpoint) is \(transition.healthy ? "healthy" : "unhealthy"): \(transition.reason) (checked by node \"\(settings.node)\")"
        recordEvent(transition.healthy ? .endpointHealthy : .endpointUnhealthy, message, on: [target.service], endpoint: target.endpoint)
        Counter(label: "metalvip_health_transitions_total",
                dimensions: [("service", target.service.namespacedName), ("to", transition.healthy ? "healthy" : "unhealthy")]).increment()
        forwardingDirty = true
        poke()
    }

    /// Why the data path does not carry what it should, for `/readyz`; nil when it does (or is off).
    public func dataPathProblem() -> String? {
        guard dataPath != nil else { return nil }
        if let forwardingProblem { return "data path not programmed: \(forwardingProblem)" }
        return programmed == nil ? "data path not programmed yet" : nil
    }

    /// The state the kernel holds, for metrics.
    public func forwardingState() -> ForwardingState { programmed ?? .empty }

    // MARK: shutting down

    /// Falls silent, then releases every claim and the node lease, so a peer takes over at once: in one write
    /// where the store allows, else in as few as its transaction limit allows, a few at once, the node lease
    /// last. Past the lease duration peers take over anyway, as from a crash.
    public func shutdown() async {
        let started = MonotonicInstant.now()
        table.silence()
        // The node lease last: in the last run, which goes after all the others.
        let parts = claims.filter { $0.value.claim.node == settings.node }.map { address, stored in
            let key = ClaimPlanner.claimKey(address)
            return Transaction(conditions: [Condition(key, .modRevision(stored.revision))], operations: [.delete(key: key)])
        } + [Transaction(operations: [.delete(key: Keyspace.nodeLease(settings.node))])]
        let owned = parts.count - 1
        let runs = TransactionBatches.runs(parts, limit: store.maxOperationsPerTransaction)
        let transactions = runs.map { TransactionBatches.merge(parts[$0]) }
        let outcomes = await TransactionBatches.commit(Array(transactions.dropLast()), to: store, continuingPastFailures: true)
            + TransactionBatches.commit(Array(transactions.suffix(1)), to: store)
        var released = 0
        var failure: (any Error)?
        for (run, outcome) in zip(runs, outcomes) {
            switch outcome {
            case .success?: released += run.upperBound == parts.count ? run.count - 1 : run.count
            // A claim moved meanwhile, say: the claims of this run lapse with the node lease.
            case .failure(let error)?: failure = failure ?? error
            case nil: continue
            }
        }
        var leaseReleased = true
        if case .failure? = outcomes.last {
            leaseReleased = (try? await store.delete(Keyspace.nodeLease(settings.node))) != nil
        }
        let elapsed = (MonotonicInstant.now() - started).milliseconds
        if let failure {
            logger.warning("released \(released) of \(owned) claims\(leaseReleased ? " and the node lease" : "") in \(elapsed) ms; the rest lapse with the node lease (\(failure))")
        } else {
            logger.info("released \(released) claims and the node lease in \(elapsed) ms")
        }
        // Peers carry the VIPs now; connections still reaching this node kept working until here.
        if let dataPath {
            await dataPath.health?.stop()
            do {
                try await dataPath.applier.apply(ForwardingState.removal())
                logger.info("removed the data path's nftables table")
            } catch {
                logger.warning("could not remove the data path's nftables table: \(error)")
            }
        }
    }
}

/// Another node's lease as this speaker saw it: the observer clock, the decoded record, and the bytes it
/// was decoded from.
struct ObservedNode {
    var observer = LeaseObserver()
    var lease: NodeLease?
    var value: Data?
}
