#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VIPStore

/// The embedded backend on SQLite in WAL mode: one database file shared by every MetalVIP process on
/// the host. A transaction is one SQLite transaction, so a 10k-service apply costs one commit and one
/// flush instead of a file and a flush per record; readers never wait for writers.
///
/// Layout (`<dir>` is `directory`): `<dir>/metalvip.db`, SQLite's `-wal` and `-shm` beside it, and the
/// `CommitBell`'s `-commits`; the tables are in `Schema`.
public final class SQLiteStore: Store {
    public static let fileName = "metalvip.db"

    public let name: String
    public let directory: String
    let path: String
    private let writer: LockedConnection
    private let reader: LockedConnection
    private let bell: CommitBell
    let openWatches = WatchThreads()

    /// How long a writer waits for another process's transaction before calling the store unavailable.
    static let writeTimeoutNanoseconds: UInt64 = 30_000_000_000

    public init(directory: String) throws {
        let directory = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        self.directory = directory
        name = "sqlite:" + directory
        path = directory + "/" + Self.fileName
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StoreError.unavailable("cannot create \(directory): \(error.localizedDescription)")
        }
        let writer = try SQLiteConnection(path: path)
        // Set-up may meet another process's transaction: wait for it here, never in a commit.
        try writer.execute("PRAGMA busy_timeout = 30000")
        try writer.query("PRAGMA journal_mode = WAL")
        try writer.execute("BEGIN IMMEDIATE")
        do {
            try writer.execute(Schema.create)
            try writer.execute("COMMIT")
        } catch {
            try? writer.execute("ROLLBACK")
            throw error
        }
        try writer.execute("PRAGMA busy_timeout = 0")
        try writer.execute("PRAGMA synchronous = FULL")
        // After a checkpoint the log shrinks back to this, instead of keeping the size of the largest apply.
        try writer.query("PRAGMA journal_size_limit = 16777216")
        self.writer = LockedConnection(writer)
        bell = try CommitBell(databasePath: path)
        reader = LockedConnection(try Self.openReader(path))
    }

    /// A connection that only reads: it waits (briefly, on its own thread) only while SQLite recovers a log.
    static func openReader(_ path: String) throws -> SQLiteConnection {
        let connection = try SQLiteConnection(path: path)
        try connection.execute("PRAGMA busy_timeout = 5000")
        return connection
    }

    public func get(_ key: String) async throws -> Record? {
        try Self.validate(key)
        return try reader.with { try Self.read(key, on: $0) }
    }

    /// All on one connection, without a round trip between keys.
    public func get(keys: [String]) async throws -> [Record?] {
        for key in keys { try Self.validate(key) }
        return try reader.with { connection in try keys.map { try Self.read($0, on: connection) } }
    }

    private static func read(_ key: String, on connection: SQLiteConnection) throws -> Record? {
        var record: Record?
        try connection.query(Schema.get, [.key(key)]) { row in
            record = Record(key: key, value: row.data(0), createRevision: row.integer(1), modRevision: row.integer(2))
        }
        return record
    }

    public func list(prefix: String) async throws -> Listing {
        try Self.validatePrefix(prefix)
        let range = KeyRange(prefix: prefix)
        return try reader.with { connection in
            try connection.execute("BEGIN")
            defer { try? connection.execute("COMMIT") }
            let revision = try connection.integer(Schema.revision) ?? 0
            var records: [Record] = []
            try connection.query(range.end == nil ? Schema.listFrom : Schema.listBetween, range.bindings) { row in
                records.append(row.record())
            }
            return Listing(records: records, revision: revision)
        }
    }

    @discardableResult
    public func commit(_ transaction: Transaction) async throws -> Revision {
        for condition in transaction.conditions { try Self.validate(condition.key) }
        for operation in transaction.operations { try Self.validate(operation.key) }
        return try await writing(sync: transaction.durability.sync) { connection in try Self.apply(transaction, on: connection) }
    }

    public func compact(through revision: Revision) async throws {
        try await writing(sync: true) { connection in try Self.compact(through: revision, on: connection) }
    }

    public func watch(prefix: String, after: Revision) -> AsyncThrowingStream<WatchEvent, Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: WatchEvent.self, throwing: Error.self)
        do { try Self.validatePrefix(prefix) } catch {
            continuation.finish(throwing: error)
            return stream
        }
        let watcher = SQLiteWatcher(path: path, bellPath: bell.path, range: KeyRange(prefix: prefix), after: after,
                                    continuation: continuation, openWatches: openWatches)
        continuation.onTermination = { _ in watcher.stop() }
        watcher.start()
        return stream
    }

    /// The database file must still be there: an open connection keeps reading a file deleted under it.
    public func ping() async throws {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw StoreError.unavailable("\(path): \(String(cString: strerror(errno)))")
        }
        _ = try reader.with { try $0.integer(Schema.revision) }
    }

    /// Runs `body` in one write transaction. When another process holds the write lock, waits with async
    /// sleeps (50 µs doubling to 2 ms), so no cooperative thread blocks on another process.
    private func writing<T>(sync: Bool, _ body: (SQLiteConnection) throws -> T) async throws -> T {
        var delay: UInt64 = 50_000
        var waited: UInt64 = 0
        while true {
            do {
                let result = try writer.withTransaction(sync: sync, body)
                bell.ring()
                return result
            } catch is SQLiteConnection.Busy {
                guard waited < Self.writeTimeoutNanoseconds else {
                    throw StoreError.unavailable("timed out after 30s waiting for the write lock of \(path)")
                }
                try await Task.sleep(nanoseconds: delay)
                waited += delay
                delay = min(delay * 2, 2_000_000)
            }
        }
    }

    /// Checks the conditions, then writes every operation at the next revision. Runs inside a write transaction.
    static func apply(_ transaction: Transaction, on connection: SQLiteConnection) throws -> Revision {
        for condition in transaction.conditions {
            let live = try connection.integer(Schema.modRevision, [.key(condition.key)])
            let holds = switch condition.expectation {
            case .absent: live == nil
            case .present: live != nil
            case .modRevision(let expected): live == expected
            }
            guard holds else { throw StoreError.conflict(key: condition.key, expected: condition.expectation) }
        }
        let revision = (try connection.integer(Schema.revision) ?? 0) + 1
        for operation in transaction.operations {
            switch operation {
            case .put(let key, let value):
                try connection.query(Schema.put, [.key(key), .bytes(value), .integer(revision)])
                try connection.query(Schema.recordPut, [.key(key)])
            case .delete(let key):
                try connection.query(Schema.delete, [.key(key)])
                // Deleting an absent key changes nothing, and no watch hears of it.
                if connection.changes > 0 { try connection.query(Schema.recordDelete, [.key(key), .integer(revision)]) }
            }
        }
        try connection.query(Schema.setRevision, [.integer(revision)])
        if revision % Maintenance.interval == 0, revision > Maintenance.retention {
            try compact(through: revision - Maintenance.retention, on: connection)
        }
        return revision
    }

    /// Drops history at or below `revision`; watches from there on end with `compacted`.
    static func compact(through revision: Revision, on connection: SQLiteConnection) throws {
        try connection.query(Schema.dropHistory, [.integer(revision)])
        try connection.query(Schema.raiseCompacted, [.integer(revision)])
    }

    static func validate(_ key: String) throws {
        if let reason = StoreKeys.problem(with: key) { throw StoreError.invalidKey(key, reason: reason) }
    }

    static func validatePrefix(_ prefix: String) throws {
        if !prefix.isEmpty, let reason = StoreKeys.problem(with: prefix) { throw StoreError.invalidKey(prefix, reason: reason) }
    }
}

/// Automatic compaction: history stays for this many revisions so a briefly disconnected watch can
/// resume, and is swept once per `interval` revisions.
enum Maintenance {
    static let interval: Revision = 5_000
    static let retention: Revision = 10_000
}

/// The keys that begin with a prefix, as the bounds of an index range.
struct KeyRange: Sendable {
    let start: [UInt8]
    let end: [UInt8]?

    init(prefix: String) {
        start = Array(prefix.utf8)
        end = StoreKeys.end(ofPrefix: start)
    }

    var bindings: [SQLiteConnection.Binding] {
        [.bytes(Data(start))] + (end.map { [.bytes(Data($0))] } ?? [])
    }
}

/// A connection shared by the tasks of one store, one at a time.
final class LockedConnection: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private let connection: SQLiteConnection
    /// The connection's `PRAGMA synchronous`: FULL (true) as opened, NORMAL for volatile commits.
    private var synchronous = true

    init(_ connection: SQLiteConnection) {
        self.connection = connection
    }

    func with<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(connection)
    }

    /// `body` inside `BEGIN IMMEDIATE … COMMIT`, rolled back when it throws. `Busy` from BEGIN means
    /// another process is writing: nothing was started, and the caller may try again. `sync` flushes the
    /// log at the commit; without it (lease renewals) a power loss may lose the commit, a crash cannot.
    func withTransaction<T>(sync: Bool, _ body: (SQLiteConnection) throws -> T) throws -> T {
        try with { connection in
            if sync != synchronous {
                try connection.execute(sync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
                synchronous = sync
            }
            try connection.execute("BEGIN IMMEDIATE")
            do {
                let result = try body(connection)
                try connection.execute("COMMIT")
                return result
            } catch {
                try? connection.execute("ROLLBACK")
                throw error
            }
        }
    }
}
