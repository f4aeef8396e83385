import Synchronization
import VIPLease
import VIPModel

/// What this node answers for, and until when. Every reply on every interface consults it, so the rule
/// "never answer after our own lease deadline" is checked per packet, under the same lock that the lease
/// side uses to move the deadline.
public final class AnswerTable: Sendable {
    struct State {
        /// The node lease deadline by this process's monotonic clock; nil until the first renewal.
        var deadline: MonotonicInstant?
        /// Address -> interface index -> MAC to answer with.
        var entries: [IPAddress: [Int32: MACAddress]] = [:]
        /// Bumped whenever the table is emptied because the lease lapsed.
        var epoch: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// The MAC to answer with for `address` on `interfaceIndex`, or nil: not ours, not there, or past deadline.
    public func answer(for address: IPAddress, on interfaceIndex: Int32, now: MonotonicInstant = .now()) -> MACAddress? {
        state.withLock { state in
            guard let deadline = state.deadline, now < deadline else { return nil }
            return state.entries[address]?[interfaceIndex]
        }
    }

    /// Whether this node may still speak for `address` at all (gratuitous bursts check before each send).
    public func holds(_ address: IPAddress, now: MonotonicInstant = .now()) -> Bool {
        state.withLock { state in
            guard let deadline = state.deadline, now < deadline else { return false }
            return state.entries[address] != nil
        }
    }

    /// A renewal landed. If the old deadline had already passed, everything is forgotten first: claims
    /// held before a lapse must be proven again (after this renewal) before anything is answered.
    /// Returns whether a lapse happened.
    @discardableResult
    public func renewed(until deadline: MonotonicInstant, now: MonotonicInstant = .now()) -> Bool {
        state.withLock { state in
            let lapsed = state.deadline.map { now >= $0 } ?? false
            if lapsed {
                state.entries.removeAll()
                state.epoch += 1
            }
            state.deadline = deadline
            return lapsed
        }
    }

    /// Whether the deadline has passed (a lapse not yet followed by a renewal).
    public func isLapsed(now: MonotonicInstant = .now()) -> Bool {
        state.withLock { state in state.deadline.map { now >= $0 } ?? true }
    }

    public var epoch: UInt64 { state.withLock { $0.epoch } }

    public var deadline: MonotonicInstant? { state.withLock { $0.deadline } }

    /// Answers for `addresses` on these interfaces from now on, unless the table lapsed since `epoch`.
    @discardableResult
    public func announce(_ addresses: [IPAddress], on interfaces: [Int32: MACAddress], epoch: UInt64) -> Bool {
        state.withLock { state in
            guard state.epoch == epoch else { return false }
            for address in addresses { state.entries[address] = interfaces }
            return true
        }
    }

    public func withdraw(_ addresses: [IPAddress]) {
        state.withLock { state in
            for address in addresses { state.entries[address] = nil }
        }
    }

    /// Stops answering on one interface; addresses left with no interface are dropped.
    public func withdraw(interfaceIndex: Int32) {
        state.withLock { state in
            for (address, interfaces) in state.entries where interfaces[interfaceIndex] != nil {
                var remaining = interfaces
                remaining[interfaceIndex] = nil
                state.entries[address] = remaining.isEmpty ? nil : remaining
            }
        }
    }

    /// Stops answering everything, at once (SIGTERM, store loss).
    public func silence() {
        state.withLock { state in
            state.entries.removeAll()
            state.deadline = nil
            state.epoch += 1
        }
    }

    public var addresses: [IPAddress] { state.withLock { Array($0.entries.keys) } }
}
