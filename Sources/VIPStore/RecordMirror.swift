/// The records under a few prefixes, kept current in memory from one listing per prefix and the watch
/// events that follow: a long-running reader (the speaker) builds its snapshot from here instead of
/// re-reading every record on every change. At 10k services each re-read was 20k record files.
///
/// Events may replay what a listing already holds (the watch starts before the last listing): a put or a
/// delete older than the record held changes nothing.
public struct RecordMirror: Sendable {
    public let prefixes: [String]
    private var records: [String: [String: Record]]
    private var skipped: [String: [SkippedEntry]] = [:]

    public init(prefixes: [String]) {
        self.prefixes = prefixes
        records = Dictionary(uniqueKeysWithValues: prefixes.map { ($0, [:]) })
    }

    /// The newest revision a listing or an event brought.
    public private(set) var revision: Revision = 0

    /// Whether every prefix has been listed: before that, the mirror is not the store.
    public var isComplete: Bool { listed.count == prefixes.count }
    private var listed: Set<String> = []

    /// Takes a prefix's listing as the whole truth about that prefix.
    public mutating func replace(prefix: String, with listing: Listing) {
        precondition(records[prefix] != nil, "\(prefix) is not mirrored")
        records[prefix] = Dictionary(listing.records.map { ($0.key, $0) }, uniquingKeysWith: { $1 })
        skipped[prefix] = listing.skipped
        listed.insert(prefix)
        revision = max(revision, listing.revision)
    }

    /// Folds in one watch event. Returns whether it changed the mirror (false for a key under no mirrored
    /// prefix, and for an event no newer than the record held).
    @discardableResult
    public mutating func apply(_ event: WatchEvent) -> Bool {
        guard let prefix = prefix(of: event.key) else { return false }
        revision = max(revision, event.revision)
        let held = records[prefix]?[event.key]
        switch event {
        case .put(let record):
            if let held, held.modRevision >= record.modRevision { return false }
            records[prefix]?[record.key] = record
        case .delete(let key, let revision):
            guard let held, held.modRevision < revision else { return false }
            records[prefix]?[key] = nil
        }
        return true
    }

    /// Folds in a write this reader committed at `revision`, so it need not wait for the watch to bring it
    /// back (that event then changes nothing). Like an event, it never undoes a newer record.
    @discardableResult
    public mutating func fold(_ operation: StoreOperation, committedAt revision: Revision) -> Bool {
        switch operation {
        case .put(let key, let value):
            guard let prefix = prefix(of: key) else { return false }
            let created = records[prefix]?[key]?.createRevision ?? revision
            return apply(.put(Record(key: key, value: value, createRevision: created, modRevision: revision)))
        case .delete(let key):
            return apply(.delete(key: key, revision: revision))
        }
    }

    /// The records under `prefix`, in no particular order.
    public func records(under prefix: String) -> Dictionary<String, Record>.Values {
        precondition(records[prefix] != nil, "\(prefix) is not mirrored")
        return records[prefix]!.values
    }

    /// What the last listings could not read, by prefix order.
    public var skippedEntries: [SkippedEntry] { prefixes.flatMap { skipped[$0] ?? [] } }

    public var count: Int { records.values.reduce(0) { $0 + $1.count } }

    /// The longest mirrored prefix the key is under. Byte-wise, as the stores match prefixes.
    func prefix(of key: String) -> String? {
        prefixes.filter { key.utf8.starts(with: $0.utf8) }.max { $0.utf8.count < $1.utf8.count }
    }
}
