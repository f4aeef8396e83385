import NIOCore
import NIOPosix

/// A task executor with one thread of its own, for work whose timing must not wait for the cooperative
/// pool: lease renewals. On two cores the pool has two threads, and a decision pass, a snapshot rebuild or
/// another speaker's watch events can hold both past a lease's slack; a thread of its own is scheduled by
/// the kernel instead, like any other thread that wakes.
final class ThreadTaskExecutor: TaskExecutor {
    private let group: MultiThreadedEventLoopGroup
    private let loop: any EventLoop

    init() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Whether the caller runs on this executor's thread (for tests).
    var isCurrent: Bool { loop.inEventLoop }

    /// Ends the thread once the jobs already enqueued have run.
    func shutdown() async {
        try? await group.shutdownGracefully()
    }
}
