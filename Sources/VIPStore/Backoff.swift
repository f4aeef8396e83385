import Foundation

/// Exponential backoff with jitter for anything that retries a store: from 50 ms (fast enough to
/// resume within a speaker's lease once the store is back) to 2 s (slow enough not to hammer a
/// member that is down). Jitter keeps many nodes from retrying in step.
public struct Backoff: Sendable {
    public let first: Duration
    public let limit: Duration
    private var attempt = 0

    public init(first: Duration = .milliseconds(50), limit: Duration = .seconds(2)) {
        self.first = first
        self.limit = limit
    }

    /// True once at least one delay was taken since the last success: the caller is in an outage.
    public var isRetrying: Bool { attempt > 0 }

    public mutating func reset() { attempt = 0 }

    public mutating func next() -> Duration {
        let delay = min(limit, first * (1 << min(attempt, 20)))
        attempt += 1
        return delay * Double.random(in: 0.5...1.0)
    }
}
