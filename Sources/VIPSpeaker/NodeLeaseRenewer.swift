import Foundation
import Logging
import Metrics
import Synchronization
import VIPAnnounce
import VIPLease
import VIPModel
import VIPStore

/// The node lease's renewals, off the speaker actor: a decision pass at 10k VIPs holds the actor for tens of
/// milliseconds, and a renewal queued behind it could lapse the lease. A renewal touches only the store and
/// the answer table, which any thread may use; the speaker hears of it only when it must act.
final class NodeLeaseRenewer: Sendable {
    /// What a renewal means to the speaker.
    enum Outcome: Sendable {
        /// Renewed; `first` when this is the first renewal since the speaker started.
        case renewed(first: Bool)
        /// Renewed after the deadline had passed: the table emptied, and claims must be proven again.
        case lapsedAndRenewed(at: MonotonicInstant)
        case failed
    }

    /// The parts of the lease record that change with the node's state (the speaker sets them).
    struct Content: Sendable, Equatable {
        var interfaces: [NodeInterface]
        var unservable: [ObjectKey]
    }

    private struct State {
        var holder: LeaseHolder
        var content: Content
        /// The last record written, and its encoding: within one second the next is the same.
        var last: (record: NodeLease, value: Data)?
        var revision: Revision?
        /// Start of the renewal whose deadline the table holds.
        var appliedStart: MonotonicInstant?
        /// When renewals started failing, for one warning per outage instead of one per attempt.
        var failingSince: MonotonicInstant?
        /// The renewal the loop waits for; cleared when it ends.
        var inFlight: Int?
    }

    private let settings: Speaker.Settings
    private let store: any Store
    private let table: AnswerTable
    private let logger: Logger
    private let state: Mutex<State>

    init(settings: Speaker.Settings, store: any Store, table: AnswerTable, logger: Logger) {
        self.settings = settings
        self.store = store
        self.table = table
        self.logger = logger
        let content = Content(interfaces: settings.interfaces.map { NodeInterface(name: $0, up: false, mac: nil) }, unservable: [])
        state = Mutex(State(holder: LeaseHolder(identity: settings.node, duration: settings.leaseDuration), content: content))
    }

    /// The revision of this node's last written lease; nil before the first renewal.
    var revision: Revision? { state.withLock { $0.revision } }

    func set(_ content: Content) { state.withLock { $0.content = content } }

    func isInFlight(_ id: Int) -> Bool { state.withLock { $0.inFlight == id } }

    func start(_ id: Int) { state.withLock { $0.inFlight = id } }

    /// One renewal: one write per node per period, whatever the number of VIPs. `id` is the loop's
    /// number for it (nil out of turn).
    func renew(_ id: Int?) async -> Outcome {
        defer { state.withLock { if $0.inFlight == id, id != nil { $0.inFlight = nil } } }
        let startedAt = MonotonicInstant.now()
        let wall = RecordCoding.timestamp()
        let (record, value): (NodeLease, Data?) = state.withLock { state in
            let record = NodeLease(
                lease: LeaseRecord(holder: settings.node, durationMilliseconds: settings.leaseDuration.milliseconds,
                                   acquireTime: state.holder.observer.record?.acquireTime ?? wall, renewTime: wall,
                                   transitions: 0),
                labels: settings.labels, interfaces: state.content.interfaces, unservable: state.content.unservable)
            return (record, state.last.flatMap { $0.record == record ? $0.value : nil })
        }
        do {
            let bytes = try value ?? RecordCoding.encode(record)
            let revision = try await store.put(Keyspace.nodeLease(settings.node), bytes, durability: .volatile)
            // Given up on by the loop at the lease deadline: what it wrote is past its worth.
            if Task.isCancelled { throw StoreError.unavailable("no answer within \(settings.leaseDuration.milliseconds) ms") }
            let now = MonotonicInstant.now()
            Timer(label: "metalvip_lease_renew_duration_seconds", dimensions: [("component", "speaker")])
                .recordNanoseconds((now - startedAt).nanosecondsClamped)
            // An out-of-turn renewal and the loop's may finish out of order: the later start sets the deadline,
            // and the table is told under the same lock so the two cannot cross.
            let applied: (first: Bool, lapsed: Bool, failingSince: MonotonicInstant?)? = state.withLock { state in
                let failingSince = state.failingSince
                state.last = (record, bytes)
                state.failingSince = nil
                if let appliedStart = state.appliedStart, startedAt < appliedStart { return nil }
                let first = state.revision == nil
                state.holder.wrote(record.lease, revision: revision, startedAt: startedAt, now: now)
                state.revision = revision
                state.appliedStart = startedAt
                return (first, table.renewed(until: startedAt + settings.leaseDuration, now: now), failingSince)
            }
            guard let (first, lapsed, failingSince) = applied else { return .renewed(first: false) }
            if let failingSince {
                logger.info("node lease renewed again after \((now - failingSince).milliseconds) ms of failed renewals")
            }
            if lapsed {
                logger.warning("node lease lapsed; claims are re-proven before answering again")
                Counter(label: "metalvip_lease_lapses_total", dimensions: [("component", "speaker")]).increment()
                return .lapsedAndRenewed(at: now)
            }
            return .renewed(first: first)
        } catch {
            Counter(label: "metalvip_lease_renew_failures_total", dimensions: [("component", "speaker")]).increment()
            let firstFailure = state.withLock { state in
                defer { if state.failingSince == nil { state.failingSince = startedAt } }
                return state.failingSince == nil
            }
            if firstFailure {
                // The trade-off, said once per outage: silence is what keeps two nodes from answering for one VIP.
                logger.warning("node lease renewal failed: \(error); this node stops answering at its lease deadline and stays silent until the store is back, so that no two nodes ever answer for one VIP")
            } else {
                logger.debug("node lease renewal failed again: \(error)")
            }
            return .failed
        }
    }
}
