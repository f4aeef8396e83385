import Foundation

/// A store-wide, strictly increasing version number. Every committed transaction gets the next one,
/// as in etcd, so "watch from revision R" means "everything that changed after R".
public typealias Revision = Int64

/// One key and its value as the store holds it.
public struct Record: Sendable, Hashable {
    public var key: String
    public var value: Data
    /// Revision of the transaction that created the key (reset when a key is deleted and created again).
    public var createRevision: Revision
    /// Revision of the last transaction that wrote the key: the compare-and-swap token.
    public var modRevision: Revision

    public init(key: String, value: Data, createRevision: Revision, modRevision: Revision) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
    }
}

/// What a transaction requires of one key before it may commit.
public enum Expectation: Sendable, Hashable {
    /// The key does not exist.
    case absent
    /// The key exists, at any revision.
    case present
    /// The key exists and was last written at exactly this revision.
    case modRevision(Revision)
}

public struct Condition: Sendable, Hashable {
    public var key: String
    public var expectation: Expectation
    public init(_ key: String, _ expectation: Expectation) {
        self.key = key
        self.expectation = expectation
    }
}

public enum StoreOperation: Sendable, Hashable {
    case put(key: String, value: Data)
    case delete(key: String)

    public var key: String {
        switch self {
        case .put(let key, _), .delete(let key): key
        }
    }
}

/// Options that trade durability for speed, per transaction.
public struct Durability: Sendable, Hashable {
    /// Flush to disk before the commit returns. Liveness records (lease renewals) turn this off:
    /// losing one on power loss only makes a lease look older, never makes two holders.
    public var sync: Bool
    public static let durable = Durability(sync: true)
    public static let volatile = Durability(sync: false)
}

/// All conditions hold and all operations apply, atomically, at one new revision; or nothing happens.
public struct Transaction: Sendable, Hashable {
    public var conditions: [Condition]
    public var operations: [StoreOperation]
    public var durability: Durability

    public init(conditions: [Condition] = [], operations: [StoreOperation], durability: Durability = .durable) {
        self.conditions = conditions
        self.operations = operations
        self.durability = durability
    }
}

public enum WatchEvent: Sendable, Hashable {
    case put(Record)
    /// The key was deleted at `revision`.
    case delete(key: String, revision: Revision)

    public var key: String {
        switch self {
        case .put(let record): record.key
        case .delete(let key, _): key
        }
    }

    public var revision: Revision {
        switch self {
        case .put(let record): record.modRevision
        case .delete(_, let revision): revision
        }
    }
}

/// A consistent snapshot of a prefix.
public struct Listing: Sendable {
    /// Records sorted by key.
    public var records: [Record]
    /// The store revision the listing reflects; watch from here to miss nothing.
    public var revision: Revision
    /// Entries that could not be read (corrupt, foreign, half-written by another tool), by name and reason.
    /// They are reported, never fatal.
    public var skipped: [SkippedEntry]

    public init(records: [Record], revision: Revision, skipped: [SkippedEntry] = []) {
        self.records = records
        self.revision = revision
        self.skipped = skipped
    }
}

public struct SkippedEntry: Sendable, Hashable, CustomStringConvertible {
    /// The file name or key as the backend sees it.
    public var name: String
    public var reason: String
    public init(name: String, reason: String) {
        self.name = name
        self.reason = reason
    }
    public var description: String { "\(name): \(reason)" }
}

public enum StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A transaction condition did not hold: the key and what was expected.
    case conflict(key: String, expected: Expectation)
    /// Watch asked for history the store no longer keeps; re-list and watch from the listing's revision.
    case compacted(requested: Revision, oldestAvailable: Revision)
    /// The backend cannot be reached or used (path, permission, network), with the cause.
    case unavailable(String)
    /// A key that the store cannot hold (empty, `..` segments, control characters).
    case invalidKey(String, reason: String)

    public var description: String {
        switch self {
        case .conflict(let key, let expected):
            "conflict on \(key): expected \(expected)"
        case .compacted(let requested, let oldest):
            "revision \(requested) is compacted; oldest available is \(oldest)"
        case .unavailable(let why):
            "store unavailable: \(why)"
        case .invalidKey(let key, let reason):
            "invalid key \"\(key)\": \(reason)"
        }
    }
}

/// The interface every backend implements: the embedded file store now, etcd next.
/// Keys are `/`-separated paths such as `services/default/web`.
public protocol Store: Sendable {
    /// A short name for logs and errors, such as `file:/var/lib/metalvip`.
    var name: String { get }

    func get(_ key: String) async throws -> Record?

    /// Several records by key, in the order asked, nil where absent. A backend with round trips reads many
    /// keys in each: a speaker that took 3k VIPs reads 3k services' events, one gRPC call apiece before.
    func get(keys: [String]) async throws -> [Record?]

    /// All records whose key starts with `prefix`, sorted by key.
    func list(prefix: String) async throws -> Listing

    /// Applies the transaction and returns its revision; throws `StoreError.conflict` when a condition fails.
    @discardableResult
    func commit(_ transaction: Transaction) async throws -> Revision

    /// Changes to keys under `prefix` with a revision greater than `after`, in revision order per key,
    /// first the backlog and then live. Finishes with `StoreError.compacted` when `after` is too old.
    func watch(prefix: String, after: Revision) -> AsyncThrowingStream<WatchEvent, Error>

    /// Drops delete history at or below `revision`, so watch can no longer start there.
    func compact(through revision: Revision) async throws

    /// Throws unless the store is reachable and usable now: what `/readyz` asks.
    func ping() async throws

    /// The most conditions, and the most operations, one transaction may carry. Writers that batch
    /// (controller, speaker, apply) stay within it.
    var maxOperationsPerTransaction: Int { get }

    /// How many transactions one writer gains by having in flight at once (the speaker's claim chunks).
    /// One where writers share a lock; more where the store commits waiting writes together.
    var transactionsInFlight: Int { get }
}

extension Store {
    /// The file store has no limit of its own.
    public var maxOperationsPerTransaction: Int { .max }

    /// One at a time: the embedded stores write under one lock, and a queue of chunks before it would hold
    /// up every node's renewals.
    public var transactionsInFlight: Int { 1 }

    /// One read per key: right for a store without round trips.
    public func get(keys: [String]) async throws -> [Record?] {
        var records: [Record?] = []
        records.reserveCapacity(keys.count)
        for key in keys { records.append(try await get(key)) }
        return records
    }

    /// By default, a read proves the store answers.
    public func ping() async throws {
        _ = try await get("leases/ping")
    }

    /// Compare-and-swap put. `expected` nil means "whatever is there".
    @discardableResult
    public func put(_ key: String, _ value: Data, expecting expected: Expectation? = nil,
                    durability: Durability = .durable) async throws -> Revision {
        try await commit(Transaction(conditions: expected.map { [Condition(key, $0)] } ?? [],
                                     operations: [.put(key: key, value: value)], durability: durability))
    }

    @discardableResult
    public func delete(_ key: String, expecting expected: Expectation? = nil) async throws -> Revision {
        try await commit(Transaction(conditions: expected.map { [Condition(key, $0)] } ?? [],
                                     operations: [.delete(key: key)]))
    }
}
