import Foundation
import Logging
import Metrics
import VIPLease
import VIPStore

/// The controller's leader lease in the store: one round of acquire-or-renew at a time, and the fencing
/// condition every controller write carries, so a deposed leader's late write is refused by the store.
///
/// Lease writes and fenced commits take turns (`exclusive`): a fenced commit reads the fence and commits
/// while no renewal is in flight, and a renewal waits for the commit in flight. So the leader's own renewal
/// never moves the lease revision under its own batch, and a conflict on the lease key always means
/// someone else wrote it.
public actor LeaderLease {
    public let key: String
    private let store: any Store
    private var holder: LeaseHolder
    private let logger: Logger
    /// Whether a lease write or fenced commit is in flight; the others wait in `waiting`, first come first served.
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public init(store: any Store, identity: String, duration: Duration, key: String = Keyspace.controllerLease,
                logger: Logger) {
        self.store = store
        self.key = key
        self.holder = LeaseHolder(identity: identity, duration: duration)
        self.logger = logger
    }

    public var identity: String { holder.identity }
    /// Counts the times this process took the lease (not renewals): a pass can tell leadership changed hands.
    public private(set) var term = 0

    /// Reads the lease and takes or renews it when the rules allow. Returns whether this process leads now.
    @discardableResult
    public func refresh() async -> Bool {
        await enter()
        defer { leave() }
        // After the wait for a commit in flight: the deadline counts from the write, not from the queue.
        let startedAt = MonotonicInstant.now()
        do {
            let current = try await store.get(key)
            let record = try current.map { try RecordCoding.decode(LeaseRecord.self, from: $0.value) }
            holder.observer.observe(record: record, revision: current?.modRevision, at: MonotonicInstant.now())
            switch holder.decide(at: MonotonicInstant.now(), wallTime: RecordCoding.timestamp()) {
            case .wait(let other, _):
                if holder.holds(at: .now()) { logger.warning("lost the controller lease", metadata: ["holder": "\(other)"]) }
                holder.forget()
                return false
            case .write(let record, let expected):
                let wasLeader = holder.holds(at: startedAt)
                let revision = try await store.put(key, try RecordCoding.encode(record),
                                                   expecting: expected.map { .modRevision($0) } ?? .absent,
                                                   durability: .volatile)
                Timer(label: "metalvip_lease_renew_duration_seconds", dimensions: [("component", "controller")])
                    .recordNanoseconds((MonotonicInstant.now() - startedAt).nanosecondsClamped)
                holder.wrote(record, revision: revision, startedAt: startedAt, now: .now())
                if !wasLeader {
                    term += 1
                    logger.info("acquired the controller lease", metadata: ["transitions": "\(record.transitions)"])
                }
                return true
            }
        } catch {
            // Losing a race for the lease is an answer, not a failure to renew.
            if case .conflict? = error as? StoreError {} else {
                Counter(label: "metalvip_lease_renew_failures_total", dimensions: [("component", "controller")]).increment()
            }
            if holder.holds(at: .now()) { logger.warning("could not renew the controller lease: \(error)") }
            return holder.holds(at: .now())
        }
    }

    public var isLeader: Bool { holder.holds(at: .now()) }

    /// The condition that makes a write land only while this lease is still ours, as last written.
    public func fence() -> Condition? {
        guard holder.holds(at: .now()), let revision = holder.observer.revision else { return nil }
        return Condition(key, .modRevision(revision))
    }

    /// Commits independent transactions a few at once (`TransactionBatches.commit`), all in one turn and so
    /// all fenced by the lease as last written, with no renewal in between: on etcd each transaction waits a
    /// round trip and a disk flush, and concurrent ones share the flush. Throws the first failure, once those
    /// in flight have ended. A conflict on the lease key means another controller wrote the lease: leadership
    /// is gone (`ControllerError.deposed`), which the caller must not retry as an ordinary race.
    /// Returns each transaction's revision, in order.
    @discardableResult
    public func commit(together transactions: [Transaction]) async throws -> [Revision] {
        await enter()
        defer { leave() }
        guard let fence = fence() else { throw ControllerError.notLeader }
        // First: a store that names the first failed condition names the fence whenever it failed.
        let fenced = transactions.map { transaction in
            var fenced = transaction
            fenced.conditions.insert(fence, at: 0)
            return fenced
        }
        do {
            return try await TransactionBatches.commitAll(fenced, to: store)
        } catch {
            throw await leaseLoss(in: error)
        }
    }

    /// A fenced commit's error as the caller must see it: a conflict on the lease key that another writer
    /// caused is `ControllerError.deposed`; anything else stays as it was.
    private func leaseLoss(in error: any Error) async -> any Error {
        guard case StoreError.conflict(let conflictKey, _)? = error as? StoreError, conflictKey == key else { return error }
        // Renewals wait for fenced commits, so only another writer can have moved the lease. Read it back
        // to be sure: a store may name the first condition when it cannot tell which one failed.
        guard let current = try? await store.get(key), current.modRevision == holder.observer.revision else {
            holder.forget()
            logger.warning("lost the controller lease: another controller wrote it")
            return ControllerError.deposed
        }
        return error
    }

    /// Waits for the lease write or fenced commit in flight, if any, and takes the turn.
    private func enter() async {
        guard busy else {
            busy = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    /// Hands the turn to the next waiter (who stays `busy`), or frees it.
    private func leave() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }

    /// Gives the lease up so a standby takes over at once instead of waiting for expiry.
    public func release() async {
        await enter()
        defer { leave() }
        guard holder.holds(at: .now()), let record = holder.releaseRecord(wallTime: RecordCoding.timestamp()),
              let revision = holder.observer.revision else { return }
        holder.forget()
        do {
            _ = try await store.put(key, try RecordCoding.encode(record), expecting: .modRevision(revision))
            logger.info("released the controller lease")
        } catch {
            logger.warning("could not release the controller lease: \(error)")
        }
    }
}
