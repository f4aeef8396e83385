#if canImport(Glibc)
import Glibc
#endif
import VIPStore

/// Tuning for automatic compaction, kept together so tests can reason about it.
enum Maintenance {
    /// Writers sweep at most once per this many revisions, bounding the cost of a full scan.
    static let interval: Revision = 5_000
    /// Tombstones younger than this many revisions survive, so briefly disconnected watchers can resume.
    static let retention: Revision = 10_000
    /// A full read of the store to drop tombstones only pays off once this many have piled up.
    static let tombstoneThreshold: Int64 = 1_000
    /// Temp files older than this (seconds) belong to a crashed writer.
    static let staleTempSeconds = 600
}

/// The write path. Every method here runs with the write lock held.
///
/// A commit is: finish any leftover intent; check conditions; write `.meta/intent` (the whole result,
/// stamped with the new revision); replace each record file; write `.meta/state` with the new
/// revision; remove the intent. A crash before the intent's rename changes nothing; after it, the next writer
/// redoes the intent, so the transaction is all-or-nothing and its revision is never reused.
struct StoreWriter: Sendable {
    let directory: StoreDirectory
    /// Up to this many records a durable commit fsyncs each file as it writes it; past it, all after writing.
    static let perFileSyncLimit = 8

    private var root: String { directory.root }

    // MARK: Recovery

    /// Completes a transaction a crashed writer left behind. Entries already at or past the intent's
    /// revision are left alone, so redoing is idempotent and never rolls a newer record back.
    func finishIntent() throws {
        let path = directory.metaPath + "/" + Intent.fileName
        let bytes: [UInt8]?
        do { bytes = try FileSystem.read(path) } catch { throw StoreError.unavailable("\(error)") }
        guard let bytes else { return }
        let intent: Intent
        do { intent = try Intent.decode(bytes) } catch {
            throw StoreError.unavailable("unreadable intent \(path) (\(error)); inspect and remove it to resume writes")
        }
        var state = try loadState()
        if intent.revision > state.revision {
            for entry in intent.entries {
                let location = KeyLayout.location(of: entry.key)
                if let current = try? directory.readEntry(entry.key), current.modRevision >= intent.revision { continue }
                try write(entry, at: location, sync: true)
                try sync(directory.directoryPath(location.directoryName))
            }
            state.revision = intent.revision
            state.tombstones += Int64(intent.entries.filter(\.isTombstone).count)
            try writeState(state, sync: true)
        }
        do { try FileSystem.remove(path) } catch { throw StoreError.unavailable("\(error)") }
    }

    /// The state file; when it is missing but records exist (deleted by hand), the revision is
    /// recovered from the newest record so no revision is handed out twice.
    func loadState() throws -> StoreState {
        if let state = try directory.readState() { return state }
        let scan = try directory.scan(PrefixScope(""))
        let newest = scan.entries.map(\.modRevision).max() ?? 0
        return StoreState(revision: newest, compacted: 0, tombstones: Int64(scan.entries.filter(\.isTombstone).count),
                          nextMaintenance: newest + Maintenance.interval)
    }

    // MARK: Commit

    func apply(_ transaction: Transaction) throws -> Revision {
        try finishIntent()
        var state = try loadState()
        let conditionKeys = Set(transaction.conditions.map(\.key))
        var before: [String: StoredEntry] = [:]
        var damaged: Set<String> = []
        var newest = state.revision
        for key in conditionKeys.union(transaction.operations.map(\.key)) {
            let entry: StoredEntry?
            do { entry = try directory.readFile(of: key) } catch let error as CorruptRecordError {
                // A damaged file may be overwritten blindly, but never used to decide a condition.
                if conditionKeys.contains(key) { throw error }
                damaged.insert(key)
                entry = nil
            }
            if let entry, entry.key != key {
                throw StoreError.invalidKey(key, reason: "its hashed file name collides with stored key \"\(entry.key)\"")
            }
            if let entry {
                newest = max(newest, entry.modRevision)
                if !entry.isTombstone { before[key] = entry }
            }
        }
        for condition in transaction.conditions {
            let current = before[condition.key]
            let holds = switch condition.expectation {
            case .absent: current == nil
            case .present: current != nil
            case .modRevision(let revision): current?.modRevision == revision
            }
            if !holds { throw StoreError.conflict(key: condition.key, expected: condition.expectation) }
        }

        // Never below a record already on disk: even if the state file lagged (power loss with volatile
        // commits), a key's modRevision still only grows, so CAS tokens are never reused.
        let revision = newest + 1
        let entries = finalEntries(transaction.operations, before: before, damaged: damaged, revision: revision)
        if entries.isEmpty { return state.revision }

        let sync = transaction.durability.sync
        try writeFile(Intent(revision: revision, entries: entries).encode(), named: Intent.fileName, sync: sync)
        if sync { try self.sync(directory.metaPath) }
        // Past a handful of records, every file is written first and flushed after: the first fsync's journal
        // commit carries the others, so a 10k-record apply pays about one flush instead of 10k (10k fsyncs were
        // a third of it), and unlike syncfs it never waits for other programs' writes.
        let flushAfter = sync && entries.count > Self.perFileSyncLimit
        var touched: Set<String> = []
        var written: [String] = []
        for entry in entries {
            let location = KeyLayout.location(of: entry.key)
            try write(entry, at: location, sync: sync && !flushAfter)
            touched.insert(location.directoryName)
            if flushAfter { written.append(directory.path(location)) }
        }
        do {
            for path in written { try FileSystem.syncFile(path) }
            // A segment directory made above was not synced into the root while writing.
            if flushAfter { try FileSystem.syncDirectory(root) }
        } catch { throw StoreError.unavailable("\(error)") }
        if sync { for name in touched.sorted() { try self.sync(directory.directoryPath(name)) } }
        state.revision = revision
        state.tombstones += Int64(entries.filter(\.isTombstone).count)
        let maintain = revision >= state.nextMaintenance
        if maintain { state.nextMaintenance = revision + Maintenance.interval }
        try writeState(state, sync: sync)
        do { try FileSystem.remove(directory.metaPath + "/" + Intent.fileName) } catch {
            throw StoreError.unavailable("\(error)")
        }
        if maintain { try? runMaintenance(state) }
        return revision
    }

    /// The records the operations leave, in first-touched order. Later operations on a key win;
    /// a put keeps the create revision of a key that was live before and not deleted in between.
    private func finalEntries(_ operations: [StoreOperation], before: [String: StoredEntry], damaged: Set<String>,
                              revision: Revision) -> [StoredEntry] {
        var order: [String] = []
        var seen: Set<String> = []
        var result: [String: StoredEntry] = [:]
        var live = before
        for operation in operations {
            if seen.insert(operation.key).inserted { order.append(operation.key) }
            switch operation {
            case .put(let key, let value):
                let entry = StoredEntry.live(key, value: Array(value), createRevision: live[key]?.createRevision ?? revision,
                                             modRevision: revision)
                live[key] = entry
                result[key] = entry
            case .delete(let key):
                // Deleting what never existed writes nothing, as in etcd; deleting a damaged file repairs it.
                result[key] = before[key] == nil && !damaged.contains(key) ? nil : .tombstone(key, revision: revision)
                live[key] = nil
            }
        }
        return order.compactMap { result[$0] }
    }

    // MARK: Compaction

    /// Raises the compacted revision first, then drops tombstones at or below it: a crash in
    /// between leaves tombstones no watch can ask for any more, which is harmless.
    func compact(through requested: Revision) throws {
        try finishIntent()
        var state = try loadState()
        let target = min(requested, state.revision)
        if target > state.compacted {
            state.compacted = target
            try writeState(state, sync: true)
        }
        state.tombstones = try removeTombstones(through: state.compacted)
        try writeState(state, sync: true)
        sweepTempFiles()
    }

    private func runMaintenance(_ state: StoreState) throws {
        sweepTempFiles()
        let cutoff = state.revision - Maintenance.retention
        if state.tombstones >= Maintenance.tombstoneThreshold, cutoff > state.compacted {
            try compact(through: cutoff)
        }
    }

    /// Removes tombstones at or below `revision` and returns how many younger ones remain.
    private func removeTombstones(through revision: Revision) throws -> Int64 {
        let scope = PrefixScope("")
        var remaining: Int64 = 0
        for name in try directory.directories(for: scope).names {
            var result = ScanResult()
            directory.scan(directoryName: name, scope: scope, into: &result)
            for entry in result.entries where entry.isTombstone {
                if entry.modRevision <= revision {
                    try? FileSystem.remove(directory.path(KeyLayout.location(of: entry.key)))
                } else {
                    remaining += 1
                }
            }
        }
        return remaining
    }

    /// Deletes temp files that crashed writers left; young ones may belong to a live writer.
    func sweepTempFiles() {
        let now = FileSystem.now()
        var directories = [directory.metaPath]
        for entry in (try? FileSystem.list(root)) ?? [] where entry.kind == .directory && !entry.name.hasPrefix(".") {
            directories.append(root + "/" + entry.name)
        }
        for path in directories {
            for entry in (try? FileSystem.list(path)) ?? [] where entry.name.hasPrefix(FileSystem.tempPrefix) {
                let file = path + "/" + entry.name
                if let modified = FileSystem.modificationTime(file), now - modified > Maintenance.staleTempSeconds {
                    try? FileSystem.remove(file)
                }
            }
        }
    }

    // MARK: Files

    private func write(_ entry: StoredEntry, at location: RecordLocation, sync: Bool) throws {
        let directoryPath = directory.directoryPath(location.directoryName)
        let bytes = RecordFile.encode(entry)
        do {
            do {
                try FileSystem.writeAtomically(directory: directoryPath, name: location.fileName, bytes: bytes, sync: sync)
            } catch let error as SystemError where error.code == ENOENT {
                // First key under this segment: make its directory (and make that durable) only now.
                if try FileSystem.makeDirectory(directoryPath), sync { try FileSystem.syncDirectory(root) }
                try FileSystem.writeAtomically(directory: directoryPath, name: location.fileName, bytes: bytes, sync: sync)
            }
        } catch { throw StoreError.unavailable("\(error)") }
    }

    private func writeState(_ state: StoreState, sync: Bool) throws {
        try writeFile(state.encode(), named: StoreState.fileName, sync: sync)
        if sync { try self.sync(directory.metaPath) }
    }

    private func writeFile(_ bytes: [UInt8], named name: String, sync: Bool) throws {
        do { try FileSystem.writeAtomically(directory: directory.metaPath, name: name, bytes: bytes, sync: sync) } catch {
            throw StoreError.unavailable("\(error)")
        }
    }

    private func sync(_ path: String) throws {
        do { try FileSystem.syncDirectory(path) } catch { throw StoreError.unavailable("\(error)") }
    }
}
