#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import VIPStore

/// One `watch` call: a dedicated thread that replays the backlog and then follows inotify.
/// The thread polls with a timeout so cancellation is noticed promptly, and it alone owns the
/// inotify descriptor, closing it on the way out. Nothing here runs on the cooperative pool.
final class DirectoryWatcher: Sendable {
    private let layout: StoreDirectory
    private let scope: PrefixScope
    private let after: Revision
    private let continuation: AsyncThrowingStream<WatchEvent, Error>.Continuation
    private let stopped = Atomic<Bool>(false)
    private let openWatches: WatchThreads

    /// Upper bound on how long a cancelled watch keeps its thread and descriptor.
    static let pollMilliseconds: Int32 = 100

    init(layout: StoreDirectory, scope: PrefixScope, after: Revision,
         continuation: AsyncThrowingStream<WatchEvent, Error>.Continuation, openWatches: WatchThreads) {
        self.openWatches = openWatches
        self.layout = layout
        self.scope = scope
        self.after = after
        self.continuation = continuation
    }

    func start() {
        openWatches.start(continuation) { [self] in
            var session = try InotifySession(layout: layout, scope: scope, after: after)
            defer { session.close() }
            try session.run(isStopped: { self.stopped.load(ordering: .relaxed) }, emit: emit)
        }
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    /// Delivers one event; false once the consumer is gone.
    private func emit(_ event: WatchEvent) -> Bool {
        if case .terminated = continuation.yield(event) {
            stop()
            return false
        }
        return true
    }
}

/// The watch thread's mutable state: inotify descriptors and the newest revision yielded per key,
/// which is what guarantees no (key, revision) twice and never an older revision after a newer one.
struct InotifySession {
    private let layout: StoreDirectory
    private let scope: PrefixScope
    private let after: Revision
    private var fd: Int32
    private var rootWatch: Int32 = -1
    private var directoryByWatch: [Int32: String] = [:]
    private var watchedDirectories: Set<String> = []
    private var newest: [String: Revision] = [:]

    private static let rootMask = UInt32(IN_CREATE | IN_MOVED_TO | IN_ONLYDIR)
    private static let directoryMask = UInt32(IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_ONLYDIR)

    init(layout: StoreDirectory, scope: PrefixScope, after: Revision) throws {
        self.layout = layout
        self.scope = scope
        self.after = after
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { throw StoreError.unavailable(SystemError("inotify_init1", layout.root).description) }
    }

    mutating func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    mutating func run(isStopped: () -> Bool, emit: (WatchEvent) -> Bool) throws {
        if scope.matchesNothing { return try idle(isStopped: isStopped) }
        // Watches go in before the backlog scan, so a write racing the scan is caught by one or the other.
        rootWatch = inotify_add_watch(fd, layout.root, Self.rootMask)
        guard rootWatch >= 0 else { throw StoreError.unavailable(SystemError("inotify_add_watch", layout.root).description) }
        let compacted = try layout.readState()?.compacted ?? 0
        if after < compacted { throw StoreError.compacted(requested: after, oldestAvailable: compacted) }
        guard deliver(try rescan(), emit: emit) else { return }
        // A compaction during the scan may have removed tombstones the backlog needed.
        let compactedNow = try layout.readState()?.compacted ?? 0
        if after < compactedNow { throw StoreError.compacted(requested: after, oldestAvailable: compactedNow) }

        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !isStopped() {
            var pollfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pollfd, 1, DirectoryWatcher.pollMilliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                throw StoreError.unavailable(SystemError("poll", layout.root).description)
            }
            if ready == 0 { continue }
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                throw StoreError.unavailable(SystemError("read inotify", layout.root).description)
            }
            guard deliver(try handle(buffer[..<count]), emit: emit) else { return }
        }
    }

    /// A prefix no key can have: stay open (like a watch on an empty prefix) until cancelled.
    private func idle(isStopped: () -> Bool) throws {
        while !isStopped() { usleep(UInt32(DirectoryWatcher.pollMilliseconds) * 1000) }
    }

    /// Parses one read's worth of `inotify_event`s and reads the files they name.
    private mutating func handle(_ bytes: ArraySlice<UInt8>) throws -> [StoredEntry] {
        var changed: [(directory: String, name: String)] = []
        var seen: Set<String> = []
        var newDirectories: [String] = []
        var overflow = false
        var offset = bytes.startIndex
        let headerSize = 16
        while offset + headerSize <= bytes.endIndex {
            let (wd, mask, length) = bytes.withUnsafeBytes { raw in
                let base = offset - bytes.startIndex
                return (raw.loadUnaligned(fromByteOffset: base, as: Int32.self),
                        raw.loadUnaligned(fromByteOffset: base + 4, as: UInt32.self),
                        Int(raw.loadUnaligned(fromByteOffset: base + 12, as: UInt32.self)))
            }
            let nameBytes = bytes[(offset + headerSize)..<min(offset + headerSize + length, bytes.endIndex)]
            let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
            offset += headerSize + length

            if mask & UInt32(IN_Q_OVERFLOW) != 0 { overflow = true; continue }
            if mask & UInt32(IN_IGNORED) != 0 {
                if let directory = directoryByWatch.removeValue(forKey: wd) { watchedDirectories.remove(directory) }
                continue
            }
            if name.isEmpty || name.hasPrefix(".") { continue }
            if wd == rootWatch {
                if mask & UInt32(IN_ISDIR) != 0, let segment = KeyLayout.segment(directoryName: name),
                   scope.includes(segment: segment) {
                    newDirectories.append(name)
                }
            } else if let directory = directoryByWatch[wd],
                      mask & UInt32(IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE) != 0,
                      seen.insert(directory + "/" + name).inserted {
                // IN_DELETE only ever removes a compacted tombstone or a foreign file: no change to report.
                changed.append((directory, name))
            }
        }
        if overflow { return try rescan() }
        var entries: [StoredEntry] = []
        for directory in newDirectories where !watchedDirectories.contains(directory) {
            try addWatch(directory)
            var result = ScanResult()
            layout.scan(directoryName: directory, scope: scope, into: &result)
            entries += result.entries
        }
        var vanished = false
        for (directory, name) in changed {
            switch layout.read(directoryName: directory, entry: DirectoryEntry(name: name, kind: .file), scope: scope) {
            case .entry(let entry): entries.append(entry)
            case .missing: vanished = true
            case .none, .skipped: break
            }
        }
        // A record file that vanished before we read it was a tombstone compaction removed: this watch
        // missed a delete, so it ends the way a watch from a compacted revision does.
        if vanished, let compacted = try layout.readState()?.compacted, compacted > after {
            throw StoreError.compacted(requested: after, oldestAvailable: compacted)
        }
        return entries
    }

    /// Watches every matching directory and reads everything under the prefix: the backlog at start,
    /// and the recovery after an inotify queue overflow.
    private mutating func rescan() throws -> [StoredEntry] {
        var result = ScanResult()
        for directory in try layout.directories(for: scope).names {
            if !watchedDirectories.contains(directory) {
                guard FileSystem.statKind(layout.directoryPath(directory)) == .directory else { continue }
                try addWatch(directory)
            }
            layout.scan(directoryName: directory, scope: scope, into: &result)
        }
        return result.entries
    }

    private mutating func addWatch(_ directory: String) throws {
        let path = layout.directoryPath(directory)
        let wd = inotify_add_watch(fd, path, Self.directoryMask)
        guard wd >= 0 else {
            // Removed between listing and watching: it reappears through the root watch.
            if errno == ENOENT || errno == ENOTDIR { return }
            throw StoreError.unavailable(SystemError("inotify_add_watch", path).description)
        }
        directoryByWatch[wd] = directory
        watchedDirectories.insert(directory)
    }

    /// Yields entries newer than both `after` and what this watch already sent for the key, oldest first.
    private mutating func deliver(_ entries: [StoredEntry], emit: (WatchEvent) -> Bool) -> Bool {
        let fresh = entries
            .filter { $0.modRevision > after && $0.modRevision > newest[$0.key, default: 0] }
            .sorted {
                $0.modRevision != $1.modRevision ? $0.modRevision < $1.modRevision
                    : $0.key.utf8.lexicographicallyPrecedes($1.key.utf8)
            }
        for entry in fresh where entry.modRevision > newest[entry.key, default: 0] {
            newest[entry.key] = entry.modRevision
            guard emit(entry.event) else { return false }
        }
        return true
    }
}
