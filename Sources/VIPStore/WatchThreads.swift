import Foundation
import Synchronization

/// The threads an embedded store's watches run on: their waits are blocking reads (inotify), which must
/// never hold a thread of the cooperative pool. Counted, so tests can prove that cancelling frees them.
public final class WatchThreads: Sendable {
    private let open = Atomic<Int>(0)

    public init() {}

    /// How many watch threads are running.
    public var count: Int { open.load(ordering: .relaxed) }

    /// Runs `body` on a new thread; the stream finishes when it returns, or with the error it throws.
    public func start(_ continuation: AsyncThrowingStream<WatchEvent, Error>.Continuation,
                      _ body: @escaping @Sendable () throws -> Void) {
        let thread = Thread { [self] in
            open.add(1, ordering: .relaxed)
            defer { open.add(-1, ordering: .relaxed) }
            do {
                try body()
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        thread.name = "metalvip-watch"
        thread.start()
    }
}
