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
    /// Told after the entries change; kept apart from `state` so it runs outside that lock. The closure sits
    /// in a class: read back through `withLock`'s generic inout, a bare closure was re-wrapped in another
    /// reabstraction thunk on every call, so each change cost more than the last (22k frames deep after minutes
    /// at 1k VIPs, most of the speaker's idle CPU, and a stack overflow in waiting).
    private let observer = Mutex<EntriesObserver?>(nil)

    private final class EntriesObserver: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    public init() {}

    /// Calls `body` after every change to which addresses are answered where (announce, withdraw, silence,
    /// a lapse found at renewal), outside the table's lock: the NDP responder keeps its multicast
    /// memberships in step with it. Deadline moves alone do not call it. One observer; nil removes it.
    public func onEntriesChange(_ body: (@Sendable () -> Void)?) {
        let observer = body.map(EntriesObserver.init)
        self.observer.withLock { $0 = observer }
    }

    private func entriesChanged() {
        observer.withLock { $0 }?.body()
    }

    /// Address -> interface index -> MAC, as it stands (deadline not consulted): what memberships follow.
    public var entries: [IPAddress: [Int32: MACAddress]] { state.withLock { $0.entries } }

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
        let (lapsed, emptied) = state.withLock { state in
            let lapsed = state.deadline.map { now >= $0 } ?? false
            let emptied = lapsed && !state.entries.isEmpty
            if lapsed {
                state.entries.removeAll()
                state.epoch += 1
            }
            state.deadline = deadline
            return (lapsed, emptied)
        }
        if emptied { entriesChanged() }
        return lapsed
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
        let (accepted, changed) = state.withLock { state in
            guard state.epoch == epoch else { return (false, false) }
            var changed = false
            for address in addresses where state.entries[address] != interfaces {
                state.entries[address] = interfaces
                changed = true
            }
            return (true, changed)
        }
        if changed { entriesChanged() }
        return accepted
    }

    public func withdraw(_ addresses: [IPAddress]) {
        let changed = state.withLock { state in
            var changed = false
            for address in addresses {
                if state.entries.removeValue(forKey: address) != nil { changed = true }
            }
            return changed
        }
        if changed { entriesChanged() }
    }

    /// Stops answering on one interface; addresses left with no interface are dropped.
    public func withdraw(interfaceIndex: Int32) {
        let changed = state.withLock { state in
            var changed = false
            for (address, interfaces) in state.entries where interfaces[interfaceIndex] != nil {
                var remaining = interfaces
                remaining[interfaceIndex] = nil
                state.entries[address] = remaining.isEmpty ? nil : remaining
                changed = true
            }
            return changed
        }
        if changed { entriesChanged() }
    }

    /// Stops answering everything, at once (SIGTERM, store loss).
    public func silence() {
        let changed = state.withLock { state in
            let changed = !state.entries.isEmpty
            state.entries.removeAll()
            state.deadline = nil
            state.epoch += 1
            return changed
        }
        if changed { entriesChanged() }
    }

    public var addresses: [IPAddress] { state.withLock { Array($0.entries.keys) } }
}
