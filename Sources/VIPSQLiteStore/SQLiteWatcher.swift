#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import VIPStore

/// One `watch` call: a thread with its own connection that reads what changed since the revision it
/// reached, then sleeps until inotify reports that the `CommitBell` rang (every commit from any MetalVIP
/// process rings it). Nothing here runs on the cooperative pool.
final class SQLiteWatcher: Sendable {
    private let path: String
    private let bellPath: String
    private let range: KeyRange
    private let after: Revision
    private let continuation: AsyncThrowingStream<WatchEvent, Error>.Continuation
    private let stopped = Atomic<Bool>(false)
    private let openWatches: WatchThreads

    /// Upper bound on how long a cancelled watch keeps its thread, connection and descriptor.
    static let pollMilliseconds: Int32 = 100
    /// Without a ring, the watch still reads once per this many polls: for writers that do not ring.
    static let pollsPerRead = 10

    init(path: String, bellPath: String, range: KeyRange, after: Revision,
         continuation: AsyncThrowingStream<WatchEvent, Error>.Continuation, openWatches: WatchThreads) {
        self.path = path
        self.bellPath = bellPath
        self.range = range
        self.after = after
        self.continuation = continuation
        self.openWatches = openWatches
    }

    func start() {
        openWatches.start(continuation) { [self] in try run() }
    }

    func stop() { stopped.store(true, ordering: .relaxed) }
    private var isStopped: Bool { stopped.load(ordering: .relaxed) }

    private func run() throws {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { throw StoreError.unavailable("inotify_init1 for \(bellPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // The watch goes in before the first read, so a commit racing that read is caught by one or the other.
        guard inotify_add_watch(fd, bellPath, UInt32(IN_MODIFY)) >= 0 else {
            throw StoreError.unavailable("inotify_add_watch \(bellPath): \(String(cString: strerror(errno)))")
        }
        let connection = try SQLiteStore.openReader(path)
        var reached = after
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while !isStopped {
            guard try deliverChanges(after: &reached, connection) else { return }
            var polls = 0
            while !isStopped, polls < Self.pollsPerRead {
                var pollfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&pollfd, 1, Self.pollMilliseconds)
                if ready > 0 {
                    // Every ring queued so far (an overflow included) is answered by the one read that follows.
                    while buffer.withUnsafeMutableBytes({ read(fd, $0.baseAddress!, $0.count) }) > 0 {}
                    break
                }
                if ready < 0, errno != EINTR {
                    throw StoreError.unavailable("poll inotify \(bellPath): \(String(cString: strerror(errno)))")
                }
                polls += 1
            }
        }
    }

    /// Reads, in one snapshot, every change in range after `reached` and yields it; `reached` becomes the
    /// snapshot's revision. False once the consumer is gone.
    private func deliverChanges(after reached: inout Revision, _ connection: SQLiteConnection) throws -> Bool {
        var events: [WatchEvent] = []
        var revision: Revision = 0
        do {
            try connection.execute("BEGIN")
            defer { try? connection.execute("COMMIT") }
            revision = try connection.integer(Schema.revision) ?? 0
            // History up to `compacted` may be gone: a change after `reached` could have vanished unseen.
            let compacted = try connection.integer(Schema.compacted) ?? 0
            if reached < compacted { throw StoreError.compacted(requested: reached, oldestAvailable: compacted) }
            try connection.query(range.end == nil ? Schema.changesFrom : Schema.changesBetween,
                                 [.integer(reached)] + range.bindings) { row in
                events.append(row.isNull(1) ? .delete(key: row.string(0), revision: row.integer(3)) : .put(row.record()))
            }
        } catch is SQLiteConnection.Busy {
            // The log is being recovered by another connection: the next wake-up reads again.
            return true
        }
        for event in events {
            if case .terminated = continuation.yield(event) {
                stop()
                return false
            }
        }
        reached = max(reached, revision)
        return true
    }
}
