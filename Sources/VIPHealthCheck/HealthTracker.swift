/// The rise/fall rule for one target, as keepalived and HAProxy apply it: a single lost check does not
/// pull an endpoint, and a single good one does not bring a flapping endpoint back.
///
/// A new target starts healthy, because the EndpointSlice conditions are trusted until checks say otherwise.
public struct HealthTracker: Sendable, Hashable {
    public let fall: Int
    public let rise: Int
    public private(set) var isHealthy: Bool
    /// Failed checks since the last success (0 after any success).
    public private(set) var failuresInARow = 0
    /// Successful checks since the last failure (0 after any failure).
    public private(set) var successesInARow = 0

    /// - Precondition: `fall` and `rise` are at least 1 (the annotations are validated to 1...100).
    public init(fall: Int, rise: Int, healthy: Bool = true) {
        precondition(fall >= 1 && rise >= 1, "fall and rise must be at least 1")
        self.fall = fall
        self.rise = rise
        self.isHealthy = healthy
    }

    /// Counts one check's result; returns the new health when this result changed it, else nil.
    public mutating func record(success: Bool) -> Bool? {
        if success {
            successesInARow += 1
            failuresInARow = 0
            if !isHealthy && successesInARow >= rise {
                isHealthy = true
                return true
            }
        } else {
            failuresInARow += 1
            successesInARow = 0
            if isHealthy && failuresInARow >= fall {
                isHealthy = false
                return false
            }
        }
        return nil
    }
}
