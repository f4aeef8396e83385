import Foundation
import Synchronization
import VIPStore

/// Drains a watch stream on a task and lets a test wait, with a deadline, for what arrived.
/// Part of the conformance kit: backends differ in timing, so every wait is bounded.
public final class WatchProbe: Sendable {
    private final class Shared: Sendable {
        struct State {
            var events: [WatchEvent] = []
            var error: (any Error)?
            var finished = false
        }
        let state = Mutex(State())
    }

    private let shared = Shared()
    private let task: Task<Void, Never>

    public init(_ stream: AsyncThrowingStream<WatchEvent, Error>) {
        let shared = shared
        task = Task {
            do {
                for try await event in stream { shared.state.withLock { $0.events.append(event) } }
                shared.state.withLock { $0.finished = true }
            } catch {
                shared.state.withLock { $0.finished = true; $0.error = error }
            }
        }
    }

    deinit { task.cancel() }

    public var events: [WatchEvent] { shared.state.withLock { $0.events } }

    /// Waits until at least `count` events arrived (or the stream ended, or the deadline passed).
    @discardableResult
    public func waitForEvents(_ count: Int, timeout: Duration = .seconds(5)) async -> [WatchEvent] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let (events, finished) = shared.state.withLock { ($0.events, $0.finished) }
            if events.count >= count || finished { return events }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return events
    }

    /// Waits for the stream to end; returns whether it did and with which error.
    public func waitForFinish(timeout: Duration = .seconds(5)) async -> (finished: Bool, error: (any Error)?) {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let (finished, error) = shared.state.withLock { ($0.finished, $0.error) }
            if finished { return (true, error) }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return (false, nil)
    }

    /// Gives a live watch time to deliver anything it should not, for "nothing more arrives" checks.
    public func settle(_ duration: Duration = .milliseconds(300)) async -> [WatchEvent] {
        try? await Task.sleep(for: duration)
        return events
    }

    public func cancel() { task.cancel() }
}
