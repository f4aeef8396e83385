import Testing
import VIPHealthCheck

@Suite struct HealthTrackerTests {
    @Test func startsHealthyWithNoStreak() {
        let tracker = HealthTracker(fall: 2, rise: 2)
        #expect(tracker.isHealthy)
        #expect(tracker.failuresInARow == 0)
        #expect(tracker.successesInARow == 0)
    }

    @Test func canStartUnhealthy() {
        var tracker = HealthTracker(fall: 2, rise: 2, healthy: false)
        #expect(!tracker.isHealthy)
        #expect(tracker.record(success: true) == nil)
        #expect(tracker.record(success: true) == true)
    }

    /// Every fall/rise from 1 to 5: the change comes exactly on the fall-th failure and the rise-th success, once.
    @Test(arguments: 1...5, 1...5)
    func changesExactlyAtThresholds(fall: Int, rise: Int) {
        var tracker = HealthTracker(fall: fall, rise: rise)
        for count in 1...fall {
            let change = tracker.record(success: false)
            #expect(change == (count == fall ? false : nil), "failure \(count) of fall \(fall)")
            #expect(tracker.isHealthy == (count < fall))
            #expect(tracker.failuresInARow == count)
        }
        // More failures change nothing.
        #expect(tracker.record(success: false) == nil)
        #expect(!tracker.isHealthy)
        for count in 1...rise {
            let change = tracker.record(success: true)
            #expect(change == (count == rise ? true : nil), "success \(count) of rise \(rise)")
            #expect(tracker.isHealthy == (count == rise))
            #expect(tracker.successesInARow == count)
            #expect(tracker.failuresInARow == 0)
        }
        #expect(tracker.record(success: true) == nil)
        #expect(tracker.isHealthy)
    }

    @Test func aSuccessResetsTheFailureStreak() {
        var tracker = HealthTracker(fall: 3, rise: 2)
        #expect(tracker.record(success: false) == nil)
        #expect(tracker.record(success: false) == nil)
        #expect(tracker.record(success: true) == nil)
        #expect(tracker.failuresInARow == 0)
        #expect(tracker.record(success: false) == nil)
        #expect(tracker.record(success: false) == nil)
        #expect(tracker.isHealthy)
        #expect(tracker.record(success: false) == false)
    }

    @Test func aFailureResetsTheSuccessStreak() {
        var tracker = HealthTracker(fall: 1, rise: 3)
        #expect(tracker.record(success: false) == false)
        #expect(tracker.record(success: true) == nil)
        #expect(tracker.record(success: true) == nil)
        #expect(tracker.record(success: false) == nil)
        #expect(tracker.successesInARow == 0)
        #expect(tracker.record(success: true) == nil)
        #expect(tracker.record(success: true) == nil)
        #expect(!tracker.isHealthy)
        #expect(tracker.record(success: true) == true)
    }

    /// Against a reference model over every sequence of 10 results: the state is healthy unless the last
    /// change was `fall` failures in a row, and changes only at the exact threshold.
    @Test(arguments: [(1, 1), (2, 2), (3, 1), (1, 3), (2, 4)])
    func matchesReferenceModelOnAllSequences(fall: Int, rise: Int) {
        for pattern in 0..<(1 << 10) {
            var tracker = HealthTracker(fall: fall, rise: rise)
            var healthy = true
            var run = 0
            var runIsSuccess = true
            for step in 0..<10 {
                let success = pattern & (1 << step) != 0
                if success == runIsSuccess { run += 1 } else { run = 1; runIsSuccess = success }
                var expected: Bool?
                if success && !healthy && run == rise { healthy = true; expected = true }
                if !success && healthy && run == fall { healthy = false; expected = false }
                let change = tracker.record(success: success)
                #expect(change == expected, "pattern \(pattern) step \(step)")
                #expect(tracker.isHealthy == healthy, "pattern \(pattern) step \(step)")
            }
        }
    }
}
