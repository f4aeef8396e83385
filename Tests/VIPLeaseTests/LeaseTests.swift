import Testing
import VIPLease

/// Lease rules with a fake clock: expiry by the observer's own clock, from the last change it saw.
@Suite struct LeaseTests {
    func at(_ milliseconds: Int64) -> MonotonicInstant { MonotonicInstant(nanoseconds: milliseconds * 1_000_000) }

    func record(_ holder: String, duration: Int64 = 1000, transitions: Int = 0, renew: String = "t") -> LeaseRecord {
        LeaseRecord(holder: holder, durationMilliseconds: duration, acquireTime: "t0", renewTime: renew, transitions: transitions)
    }

    @Test func expiryCountsFromWhenTheObserverSawTheChange() {
        var observer = LeaseObserver()
        observer.observe(record: record("a"), revision: 5, at: at(10_000))
        #expect(observer.state(at: at(10_999)) == .held(holder: "a", remaining: .milliseconds(1)))
        #expect(observer.state(at: at(11_000)) == .expired(holder: "a"))
        // Seeing the same revision again does not extend it; a renewal (new revision) does.
        observer.observe(record: record("a"), revision: 5, at: at(10_900))
        #expect(observer.state(at: at(11_000)) == .expired(holder: "a"))
        observer.observe(record: record("a", renew: "t2"), revision: 6, at: at(11_500))
        #expect(observer.state(at: at(12_400)).isTakeable == false)
    }

    @Test func aBlindObserverRestartsItsClockAndNeverFreesALease() {
        var observer = LeaseObserver()
        observer.observe(record: record("a"), revision: 5, at: at(0))
        #expect(observer.state(at: at(3_000)) == .expired(holder: "a"))
        // Back from a store outage: "unchanged" may only mean "not seen"; a full duration counts again.
        observer.restartClock(at: at(3_000))
        #expect(observer.state(at: at(3_999)) == .held(holder: "a", remaining: .milliseconds(1)))
        #expect(observer.state(at: at(4_000)) == .expired(holder: "a"))
        // Nothing to restart for what was never seen, and a released lease stays free.
        var empty = LeaseObserver()
        empty.restartClock(at: at(1))
        #expect(empty.state(at: at(1)) == .free)
        var released = LeaseObserver()
        released.observe(record: record(""), revision: 2, at: at(0))
        released.restartClock(at: at(10))
        #expect(released.state(at: at(10)) == .free)
    }

    @Test func wallClockInTheRecordIsIgnored() {
        var observer = LeaseObserver()
        // A renew time years in the past (skewed writer clock) still counts as fresh when first seen.
        observer.observe(record: LeaseRecord(holder: "a", durationMilliseconds: 1000, acquireTime: "1970-01-01T00:00:00Z",
                                             renewTime: "1970-01-01T00:00:00Z", transitions: 0), revision: 1, at: at(0))
        #expect(!observer.state(at: at(500)).isTakeable)
    }

    @Test func releasedOrAbsentIsFreeAtOnce() {
        var observer = LeaseObserver()
        #expect(observer.state(at: at(0)) == .free)
        observer.observe(record: record(""), revision: 3, at: at(0))
        #expect(observer.state(at: at(1)) == .free)
    }

    @Test func holderTakesFreeLeaseRenewsItsOwnAndWaitsForOthers() {
        var a = LeaseHolder(identity: "a", duration: .seconds(1))
        a.observer.observe(record: nil, revision: nil, at: at(0))
        guard case .write(let taken, let expected) = a.decide(at: at(0), wallTime: "w0") else {
            Issue.record("a free lease must be taken")
            return
        }
        #expect(taken.holder == "a" && expected == nil && taken.transitions == 0)
        a.wrote(taken, revision: 1, startedAt: at(0), now: at(5))
        #expect(a.holds(at: at(999)))
        #expect(!a.holds(at: at(1000)), "the holder's deadline counts from when its write started")

        var b = LeaseHolder(identity: "b", duration: .seconds(1))
        b.observer.observe(record: taken, revision: 1, at: at(20))
        guard case .wait(let holder, let recheck) = b.decide(at: at(20), wallTime: "w") else {
            Issue.record("a live lease must not be taken")
            return
        }
        #expect(holder == "a" && recheck == .seconds(1))
        // The holder's deadline is never later than any observer's expiry.
        #expect(a.deadline! <= at(20) + .seconds(1))

        // Expired: b takes it with a CAS on the revision it saw, and counts a transition.
        b.observer.observe(record: taken, revision: 1, at: at(600))
        guard case .write(let stolen, let seen) = b.decide(at: at(1020), wallTime: "w1") else {
            Issue.record("an expired lease must be taken")
            return
        }
        #expect(stolen.holder == "b" && seen == 1 && stolen.transitions == 1)
    }

    @Test func releaseRecordOnlyForTheHolder() {
        var a = LeaseHolder(identity: "a", duration: .seconds(1))
        a.observer.observe(record: record("b"), revision: 2, at: at(0))
        #expect(a.releaseRecord(wallTime: "w") == nil)
        a.observer.observe(record: record("a"), revision: 3, at: at(0))
        #expect(a.releaseRecord(wallTime: "w")?.holder == "")
    }

    @Test func realMonotonicClockMoves() {
        let first = MonotonicInstant.now()
        let second = MonotonicInstant.now()
        #expect(second >= first)
        #expect(Duration.milliseconds(1500).milliseconds == 1500)
    }
}
