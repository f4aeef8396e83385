import Foundation

/// A point on one process's monotonic clock. Lease expiry is judged only with these, never with wall
/// time, so clock skew between hosts cannot make two holders.
public struct MonotonicInstant: Sendable, Hashable, Comparable {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public static func + (lhs: Self, rhs: Duration) -> Self {
        Self(nanoseconds: lhs.nanoseconds + rhs.nanosecondsClamped)
    }

    public static func - (lhs: Self, rhs: Self) -> Duration { .nanoseconds(lhs.nanoseconds - rhs.nanoseconds) }

    /// CLOCK_MONOTONIC: keeps running while the process is stopped, so a SIGSTOPped holder wakes up late.
    public static func now() -> Self {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Self(nanoseconds: Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
    }
}

extension Duration {
    public var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (seconds < 0 ? .min : .max) : whole + attoseconds / 1_000_000_000
    }

    public var milliseconds: Int64 { nanosecondsClamped / 1_000_000 }
}

/// The stored lease: Kubernetes' Lease fields. `renewTime` is wall time for people reading it; no one
/// uses it to judge expiry.
public struct LeaseRecord: Sendable, Hashable, Codable {
    /// Empty when released.
    public var holder: String
    public var durationMilliseconds: Int64
    public var acquireTime: String
    public var renewTime: String
    /// How many times the holder changed: a move history at a glance.
    public var transitions: Int

    public init(holder: String, durationMilliseconds: Int64, acquireTime: String, renewTime: String, transitions: Int) {
        self.holder = holder
        self.durationMilliseconds = durationMilliseconds
        self.acquireTime = acquireTime
        self.renewTime = renewTime
        self.transitions = transitions
    }

    public var duration: Duration { .milliseconds(durationMilliseconds) }
    public var isReleased: Bool { holder.isEmpty }
}

/// What an observer concludes about a lease right now.
public enum LeaseState: Sendable, Hashable {
    /// No record, or released by its holder: anyone may take it at once.
    case free
    /// Live: held by `holder` for at least `remaining` more by this observer's clock.
    case held(holder: String, remaining: Duration)
    /// Not renewed within its duration since this observer last saw it change.
    case expired(holder: String)

    public var isTakeable: Bool {
        if case .held = self { return false }
        return true
    }
}

/// Judges expiry the Kubernetes leader-election way: from when *this* observer last saw the record
/// change, by its own monotonic clock. A record seen for the first time counts as just renewed.
public struct LeaseObserver: Sendable {
    /// The store's revision of the record as last seen (nil: absent).
    public private(set) var revision: Int64?
    public private(set) var record: LeaseRecord?
    /// When the record was last seen to change.
    public private(set) var changedAt: MonotonicInstant?

    public init() {}

    public mutating func observe(record: LeaseRecord?, revision: Int64?, at now: MonotonicInstant) {
        if changedAt == nil || revision != self.revision || record != self.record {
            changedAt = now
        }
        self.record = record
        self.revision = revision
    }

    /// Counts a full duration again from `now`, as if the record had just changed: for an observer that was
    /// blind for a while (its store unreachable), whose "unchanged" may only mean "not seen". Always safe:
    /// it can only delay a takeover, never cause one.
    public mutating func restartClock(at now: MonotonicInstant) {
        if changedAt != nil { changedAt = now }
    }

    public func state(at now: MonotonicInstant) -> LeaseState {
        guard let record, !record.isReleased, let changedAt else { return .free }
        let expiry = changedAt + record.duration
        return now < expiry ? .held(holder: record.holder, remaining: expiry - now) : .expired(holder: record.holder)
    }
}

/// One candidate's side of a lease: when to take it, when to renew, and the deadline past which it must
/// act as if it no longer holds it.
public struct LeaseHolder: Sendable {
    public let identity: String
    public let duration: Duration
    public var observer = LeaseObserver()
    /// Start of the last successful write + duration: earlier than any observer can judge expiry, because
    /// every observer counts from a moment after the write landed.
    public private(set) var deadline: MonotonicInstant?

    public init(identity: String, duration: Duration) {
        self.identity = identity
        self.duration = duration
    }

    public enum Decision: Sendable, Hashable {
        /// Write `record` if the stored one is still at `expectedRevision` (nil: absent).
        case write(LeaseRecord, expectedRevision: Int64?)
        /// Someone else holds it; look again no later than after `recheck`.
        case wait(holder: String, recheck: Duration)
    }

    /// What to do, given what the observer has seen. `wallTime` only fills the human-readable fields.
    public func decide(at now: MonotonicInstant, wallTime: String) -> Decision {
        let current = observer.record
        switch observer.state(at: now) {
        case .held(let holder, let remaining) where holder != identity:
            return .wait(holder: holder, recheck: remaining)
        case .held:
            var renewed = current!
            renewed.renewTime = wallTime
            renewed.durationMilliseconds = duration.milliseconds
            return .write(renewed, expectedRevision: observer.revision)
        case .free, .expired:
            let changedHands = current?.holder != identity
            let record = LeaseRecord(holder: identity, durationMilliseconds: duration.milliseconds,
                                     acquireTime: changedHands ? wallTime : (current?.acquireTime ?? wallTime),
                                     renewTime: wallTime,
                                     transitions: (current?.transitions ?? 0) + (changedHands && current != nil ? 1 : 0))
            return .write(record, expectedRevision: observer.revision)
        }
    }

    /// Records a write that succeeded; `startedAt` is when the write was issued.
    public mutating func wrote(_ record: LeaseRecord, revision: Int64, startedAt: MonotonicInstant, now: MonotonicInstant) {
        observer.observe(record: record, revision: revision, at: now)
        deadline = record.isReleased ? nil : startedAt + duration
    }

    /// The holder's own judgement, made before every act that needs the lease.
    public func holds(at now: MonotonicInstant) -> Bool {
        guard let deadline else { return false }
        return now < deadline
    }

    /// A record that gives the lease up, so peers take over without waiting for expiry.
    public func releaseRecord(wallTime: String) -> LeaseRecord? {
        guard var record = observer.record, record.holder == identity else { return nil }
        record.holder = ""
        record.renewTime = wallTime
        return record
    }

    public mutating func forget() {
        deadline = nil
    }
}

import Synchronization

/// The last time a process loop went round, for `/healthz`: a loop that stops beating is not alive.
public final class Heartbeat: Sendable {
    private let last = Atomic<Int64>(MonotonicInstant.now().nanoseconds)

    public init() {}

    public func beat() { last.store(MonotonicInstant.now().nanoseconds, ordering: .relaxed) }

    /// Whether the loop beat within `window`.
    public func isAlive(within window: Duration, now: MonotonicInstant = .now()) -> Bool {
        now - MonotonicInstant(nanoseconds: last.load(ordering: .relaxed)) < window
    }
}
