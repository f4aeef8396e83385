#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import VIPStore

/// The embedded backend: one file per record under a directory shared by every MetalVIP process
/// on the host. Writers serialize on a `flock`; readers never lock and only ever open whole files.
///
/// Layout (`<dir>` is `directory`):
///
///     <dir>/.meta/lock               flock target for writers
///     <dir>/.meta/state              revision, compacted revision, maintenance counters
///     <dir>/.meta/intent             redo log of the transaction being applied (usually absent)
///     <dir>/<segment>/<rest>         one record or tombstone per key, names percent-encoded
///     <dir>/<segment>/@              the record of the one-segment key `<segment>`
///     <dir>/<segment>/~<hash>        a key whose encoded rest would be too long for a file name
///     <dir>/**/.tmp-<pid>-<random>   a write in progress (or left by a crash; swept after 10 minutes)
public final class FileStore: Store {
    public let name: String
    public let directory: String
    let layout: StoreDirectory
    let writer: StoreWriter
    let lock: WriteLock
    let openWatches = WatchThreads()

    /// How often `list` re-reads when a commit lands mid-scan before settling for a looser snapshot.
    private static let listAttempts = 5

    public init(directory: String) throws {
        let directory = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        self.directory = directory
        name = "file:" + directory
        let layout = StoreDirectory(root: directory)
        self.layout = layout
        writer = StoreWriter(directory: layout)
        do {
            try Self.makeDirectories(directory)
            try FileSystem.makeDirectory(layout.metaPath)
        } catch {
            throw StoreError.unavailable("\(error)")
        }
        guard access(directory, R_OK | W_OK | X_OK) == 0 else {
            throw StoreError.unavailable(SystemError("access", directory).description)
        }
        lock = try WriteLock(metaDirectory: layout.metaPath)
        // A crashed writer's transaction is finished before this process reads anything.
        if FileSystem.exists(layout.metaPath + "/" + Intent.fileName) {
            try lock.withLockBlocking { [writer] in try writer.finishIntent() }
        }
    }

    private static func makeDirectories(_ path: String) throws {
        if FileSystem.statKind(path) == .directory { return }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path, FileSystem.statKind(parent) != .directory { try makeDirectories(parent) }
        try FileSystem.makeDirectory(path)
    }

    public func get(_ key: String) async throws -> Record? {
        try KeyLayout.validate(key)
        return try layout.readEntry(key)?.record
    }

    public func list(prefix: String) async throws -> Listing {
        try KeyLayout.validatePrefix(prefix)
        let scope = PrefixScope(prefix)
        var attempt = 0
        while true {
            attempt += 1
            var revision = try layout.readState()?.revision ?? 0
            // A transaction whose intent is in place is committed even if its files are still being
            // replaced (or its writer died): overlay it, so the listing never shows half of it.
            let intent = layout.readIntent().flatMap { $0.revision > revision ? $0 : nil }
            let scan = try layout.scan(scope)
            var entries = Dictionary(scan.entries.map { ($0.key, $0) },
                                     uniquingKeysWith: { $0.modRevision >= $1.modRevision ? $0 : $1 })
            if let intent {
                revision = intent.revision
                for entry in intent.entries where scope.includes(key: entry.key) {
                    if entries[entry.key].map({ $0.modRevision < entry.modRevision }) ?? true { entries[entry.key] = entry }
                }
            }
            // Every commit up to `revision` finished its files (or its intent) before the state file
            // said so; if nothing newer showed up mid-scan, this is exactly the state at `revision`.
            let settled = entries.values.allSatisfy { $0.modRevision <= revision }
            if settled || attempt >= Self.listAttempts {
                let records = entries.values.compactMap(\.record)
                    .sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                return Listing(records: records, revision: revision, skipped: scan.skipped)
            }
            try await Task.sleep(nanoseconds: 1_000_000)
        }
    }

    @discardableResult
    public func commit(_ transaction: Transaction) async throws -> Revision {
        try Self.validate(transaction)
        return try await lock.withLock { try writer.apply(transaction) }
    }

    public func watch(prefix: String, after: Revision) -> AsyncThrowingStream<WatchEvent, Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: WatchEvent.self, throwing: Error.self)
        do { try KeyLayout.validatePrefix(prefix) } catch {
            continuation.finish(throwing: error)
            return stream
        }
        let watcher = DirectoryWatcher(layout: layout, scope: PrefixScope(prefix), after: after, continuation: continuation,
                                       openWatches: openWatches)
        continuation.onTermination = { _ in watcher.stop() }
        watcher.start()
        return stream
    }

    /// The directory and its meta folder must still be there: a read of a missing record would just say
    /// "absent" even when the whole store is gone.
    public func ping() async throws {
        var status = stat()
        guard stat(layout.metaPath, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
            throw StoreError.unavailable("\(layout.metaPath): \(String(cString: strerror(errno)))")
        }
    }

    public func compact(through revision: Revision) async throws {
        try await lock.withLock { try writer.compact(through: revision) }
    }

    /// `commit` for callers on their own threads (tools, tests): blocks in flock instead of sleeping.
    @discardableResult
    public func commitBlocking(_ transaction: Transaction) throws -> Revision {
        try Self.validate(transaction)
        return try lock.withLockBlocking { try writer.apply(transaction) }
    }

    private static func validate(_ transaction: Transaction) throws {
        for condition in transaction.conditions { try KeyLayout.validate(condition.key) }
        for operation in transaction.operations { try KeyLayout.validate(operation.key) }
    }
}
