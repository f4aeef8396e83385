import VIPStore

/// A record file that exists but cannot be read as the record it should hold. Thrown by `get`
/// (and by a commit whose condition depends on it) so callers can name the file to repair.
public struct CorruptRecordError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Path of the damaged file.
    public var file: String
    public var reason: String

    public var description: String { "corrupt record file \(file): \(reason)" }
}

/// Everything a scan of some directories found: entries (tombstones included) and what it skipped.
struct ScanResult: Sendable {
    var entries: [StoredEntry] = []
    var skipped: [SkippedEntry] = []
}

/// The on-disk layout and its lock-free reads. Readers rely on every file being replaced by rename,
/// so any file they open is whole.
struct StoreDirectory: Sendable {
    let root: String

    /// The store's own files live apart from the records, so their churn (every commit rewrites the
    /// state) never wakes a watcher of the root directory.
    static let metaName = ".meta"
    var metaPath: String { root + "/" + Self.metaName }

    func directoryPath(_ directoryName: String) -> String { root + "/" + directoryName }

    func path(_ location: RecordLocation) -> String {
        root + "/" + location.directoryName + "/" + location.fileName
    }

    /// The state file, or nil in a store no writer has committed to yet.
    func readState() throws -> StoreState? {
        let path = metaPath + "/" + StoreState.fileName
        let bytes: [UInt8]?
        do { bytes = try FileSystem.read(path) } catch { throw StoreError.unavailable("\(error)") }
        guard let bytes else { return nil }
        do { return try StoreState.decode(bytes) } catch {
            throw StoreError.unavailable("unreadable state file \(path): \(error)")
        }
    }

    /// The transaction a writer is applying (or a crashed one left), if any. Readers treat it as
    /// committed: the next writer finishes it before doing anything else.
    func readIntent() -> Intent? {
        guard let bytes = try? FileSystem.read(metaPath + "/" + Intent.fileName) else { return nil }
        return try? Intent.decode(bytes)
    }

    /// The entry stored for a validated key: nil when absent (or when a hashed name holds another key).
    func readEntry(_ key: String) throws -> StoredEntry? {
        let entry = try readFile(of: key)
        return entry?.key == key ? entry : nil
    }

    /// The entry in the file `key` maps to, whichever key it holds: a hashed name may hold another
    /// key whose hash collides, which writers must refuse rather than overwrite.
    func readFile(of key: String) throws -> StoredEntry? {
        let location = KeyLayout.location(of: key)
        let path = path(location)
        let bytes: [UInt8]?
        do { bytes = try FileSystem.read(path) } catch let error as SystemError {
            throw CorruptRecordError(file: path, reason: error.description)
        }
        guard let bytes else { return nil }
        let entry: StoredEntry
        do { entry = try RecordFile.decode(bytes) } catch {
            throw CorruptRecordError(file: path, reason: "\(error)")
        }
        guard entry.key == key || (location.fileName.utf8.first == KeyLayout.hashedMarker
                                   && KeyLayout.location(of: entry.key) == location)
        else { throw CorruptRecordError(file: path, reason: "holds key \"\(entry.key)\", not \"\(key)\"") }
        return entry
    }

    /// Segment directories that can hold keys under `scope`, plus foreign root entries worth reporting.
    func directories(for scope: PrefixScope) throws -> (names: [String], skipped: [SkippedEntry]) {
        if scope.matchesNothing { return ([], []) }
        if let name = scope.directoryName { return ([name], []) }
        let entries: [DirectoryEntry]?
        do { entries = try FileSystem.list(root) } catch { throw StoreError.unavailable("\(error)") }
        var names: [String] = []
        var skipped: [SkippedEntry] = []
        for entry in entries ?? [] where !entry.name.hasPrefix(".") {
            if entry.kind == .directory, let segment = KeyLayout.segment(directoryName: entry.name) {
                if scope.includes(segment: segment) { names.append(entry.name) }
            } else if entry.name.utf8.starts(with: scope.prefixBytes) {
                let reason = entry.kind == .directory ? "directory name this store does not write" : "not a store directory"
                skipped.append(SkippedEntry(name: entry.name, reason: reason))
            }
        }
        return (names.sorted(), skipped)
    }

    /// Reads every entry under `scope`. Damaged or foreign files become `skipped`; temp files are ignored.
    func scan(_ scope: PrefixScope) throws -> ScanResult {
        let (names, skipped) = try directories(for: scope)
        var result = ScanResult(skipped: skipped)
        for name in names { scan(directoryName: name, scope: scope, into: &result) }
        return result
    }

    func scan(directoryName: String, scope: PrefixScope, into result: inout ScanResult) {
        let entries: [DirectoryEntry]?
        do { entries = try FileSystem.list(directoryPath(directoryName)) } catch {
            result.skipped.append(SkippedEntry(name: directoryName, reason: "\(error)"))
            return
        }
        for entry in entries ?? [] {
            switch read(directoryName: directoryName, entry: entry, scope: scope) {
            case .none, .missing: break
            case .entry(let stored): result.entries.append(stored)
            case .skipped(let skipped): result.skipped.append(skipped)
            }
        }
    }

    /// The outcome of looking at one directory entry.
    enum FileOutcome {
        case none
        /// The file vanished between the event or listing and the read: only compaction unlinks record files.
        case missing
        case entry(StoredEntry)
        case skipped(SkippedEntry)
    }

    /// Reads one file of a segment directory if it can hold a key under `scope`.
    func read(directoryName: String, entry: DirectoryEntry, scope: PrefixScope) -> FileOutcome {
        let display = directoryName + "/" + entry.name
        if entry.name.hasPrefix(FileSystem.tempPrefix) { return .none }
        if entry.name.hasPrefix(".") { return .skipped(SkippedEntry(name: display, reason: "not a record file name")) }
        let meaning = KeyLayout.meaning(directoryName: directoryName, fileName: entry.name)
        if case .key(let key) = meaning, !scope.includes(key: key) { return .none }
        if meaning == .foreign { return .skipped(SkippedEntry(name: display, reason: "not a record file name")) }
        if entry.kind != .file { return .skipped(SkippedEntry(name: display, reason: "not a regular file")) }
        let bytes: [UInt8]?
        do { bytes = try FileSystem.read(directoryPath(directoryName) + "/" + entry.name) } catch {
            return .skipped(SkippedEntry(name: display, reason: "\(error)"))
        }
        guard let bytes else { return .missing }
        let stored: StoredEntry
        do { stored = try RecordFile.decode(bytes) } catch {
            return .skipped(SkippedEntry(name: display, reason: "\(error)"))
        }
        let expected = KeyLayout.location(of: stored.key)
        guard (try? KeyLayout.validate(stored.key)) != nil,
              expected == RecordLocation(directoryName: directoryName, fileName: entry.name)
        else { return .skipped(SkippedEntry(name: display, reason: "holds key \"\(stored.key)\" that belongs elsewhere")) }
        return scope.includes(key: stored.key) ? .entry(stored) : .none
    }
}
