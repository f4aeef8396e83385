#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import VIPStore

/// One `watch` call: a thread with its own connection that reads what changed since the revision it
/// reached, then sleeps until inotify reports a write to the database directory (every commit, from any
/// process, writes the log file there). Nothing here runs on the cooperative pool.
final class SQLiteWatcher: Sendable {
    private let path: String
    private let directory: String
    private let range: KeyRange
    private let after: Revision
    private let continuation: AsyncThrowingStream<WatchEvent, Error>.Continuation
    private let stopped = Atomic<Bool>(false)
    private let openWatches: WatchThreads

    /// Upper bound on how long a cancelled watch keeps its thread, connection and descriptor.
    static let pollMilliseconds: Int32 = 100
    /// How long a watch waits after the first write it hears of before reading: a commit's writes land well
    /// within it, so one commit wakes each watch once instead of once per write.
    static let settleMicroseconds: UInt32 = 1_000
    /// Without any inotify event, the watch still reads once per this many polls: a safety net, not the path.
    static let pollsPerRead = 10

    init(path: String, directory: String, range: KeyRange, after: Revision,
         continuation: AsyncThrowingStream<WatchEvent, Error>.Continuation, openWatches: WatchThreads) {
        self.path = path
        self.directory = directory
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
        guard fd >= 0 else { throw StoreError.unavailable("inotify_init1 for \(directory): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // The watch goes in before the first read, so a commit racing that read is caught by one or the other.
        let mask = UInt32(IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE)
        guard inotify_add_watch(fd, directory, mask) >= 0 else {
            throw StoreError.unavailable("inotify_add_watch \(directory): \(String(cString: strerror(errno)))")
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
                    // A commit is several writes to the log, each an event: let it finish, then drain every
                    // queued event (an overflow included), so one read answers them all.
                    usleep(Self.settleMicroseconds)
                    while buffer.withUnsafeMutableBytes({ read(fd, $0.baseAddress!, $0.count) }) > 0 {}
                    break
                }
                if ready < 0, errno != EINTR {
                    throw StoreError.unavailable("poll inotify \(directory): \(String(cString: strerror(errno)))")
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
