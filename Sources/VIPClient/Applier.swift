import Foundation
import VIPManifest
import VIPModel
import VIPStore

/// A file to apply or delete: its name for messages and its text.
public struct ManifestFile: Sendable {
    public var name: String
    public var text: String

    public init(name: String, text: String) {
        self.name = name
        self.text = text
    }
}

/// What happened to one document, as kubectl says it.
public enum ApplyOutcome: String, Sendable {
    case created, configured, unchanged
}

public struct ApplyResult: Sendable {
    /// In input order: `ipaddresspool.metallb.io/a created`, `skipped deployment.apps/web (not handled)`.
    public var lines: [String] = []
    public var warnings: [String] = []
    public var revision: Revision?
}

public enum ApplyError: Error, Sendable, CustomStringConvertible {
    case manifest(ManifestError)
    case notFound([String])
    /// A key changed between the read and the write. `split` when the apply needed several transactions
    /// (the store's limit), so the others may have been written.
    case conflict(String, split: Bool)

    public var description: String {
        switch self {
        case .manifest(let error): "error: \(error)"
        case .notFound(let names): names.map { "error: \($0) not found" }.joined(separator: "\n")
        case .conflict(let key, false): "error: \(key) changed while applying; nothing was written, try again"
        case .conflict(let key, true):
            "error: \(key) changed while applying; the store takes this apply in several transactions, and the one with \(key) was not written (others may have been); apply again"
        }
    }
}

/// Applies manifests all or nothing: every document is read and checked, against each other and the
/// store, before one transaction writes them all.
public struct Applier: Sendable {
    public let store: any Store

    public init(store: any Store) {
        self.store = store
    }

    /// Reads every file; the first bad document stops everything.
    public static func read(_ files: [ManifestFile]) throws(ApplyError) -> [ManifestEntry] {
        var entries: [ManifestEntry] = []
        for file in files {
            do {
                entries += try ManifestReader.read(file.text, file: file.name)
            } catch {
                throw .manifest(error)
            }
        }
        return entries
    }

    /// Commits the per-object parts: in one transaction when the store allows it (the file store always
    /// does), else in as few as its limit allows, each all-or-nothing. Nil when nothing was to be written.
    /// `stages` gives each part's place in the dependency order: split transactions of one stage go a few
    /// at once (on etcd each waits a round trip and a disk flush), and a stage starts when the one before
    /// it is written.
    private func commit(_ parts: [Transaction], stages: [Int]) async throws -> Revision? {
        let limit = store.maxOperationsPerTransaction
        func writes(_ run: Range<Int>) -> Bool { parts[run].contains { !$0.operations.isEmpty } }
        let runs = TransactionBatches.runs(parts, limit: limit).filter(writes)
        guard runs.count > 1 else { return try await commitTogether(runs.map { TransactionBatches.merge(parts[$0]) }, split: false) }
        var revision: Revision?
        var start = 0
        while start < parts.count {
            let end = stages[start...].firstIndex { $0 != stages[start] } ?? parts.count
            let stage = TransactionBatches.runs(Array(parts[start..<end]), limit: limit)
                .map { ($0.lowerBound + start)..<($0.upperBound + start) }.filter(writes)
            if let written = try await commitTogether(stage.map { TransactionBatches.merge(parts[$0]) }, split: true) {
                revision = max(revision ?? written, written)
            }
            start = end
        }
        return revision
    }

    /// Commits independent transactions, a few at a time; the highest revision, or the first failure.
    /// `split` when they are part of an apply that needed several.
    private func commitTogether(_ transactions: [Transaction], split: Bool) async throws -> Revision? {
        do {
            return try await TransactionBatches.commitAll(transactions, to: store).max()
        } catch StoreError.conflict(let key, _) {
            throw ApplyError.conflict(key, split: split)
        }
    }

    /// Above this many objects of one kind, their prefix is listed once instead of read object by object:
    /// on etcd, 10k point reads were 10k round trips.
    static let pointReadLimit = 64

    /// What the store holds now for each of `keys`, by store key.
    private func existingRecords(of keys: [ObjectKey]) async throws -> [String: Record] {
        var records: [String: Record] = [:]
        for (kind, ofKind) in Dictionary(grouping: keys, by: \.kind) {
            if ofKind.count > Self.pointReadLimit {
                for record in try await store.list(prefix: Keyspace.prefix(of: kind)).records { records[record.key] = record }
            } else {
                for key in ofKind.map(Keyspace.key(of:)) { records[key] = try await store.get(key) }
            }
        }
        return records
    }

    public func apply(_ files: [ManifestFile], now: Date = Date()) async throws -> ApplyResult {
        let entries = try Self.read(files)
        let objects = entries.compactMap { entry -> ManifestObject? in
            if case .object(let object) = entry { return object }
            return nil
        }
        let existingPools = try await ClusterSnapshot.loadPools(from: store)
        do {
            try ConfigValidator.validate(objects, existingPools: existingPools)
        } catch {
            throw ApplyError.manifest(error)
        }

        var result = ApplyResult()
        var parts: [Transaction] = []
        var stages: [Int] = []
        var outcomes: [ObjectKey: ApplyOutcome] = [:]
        // Written in dependency order (`Kind.applyOrder`: services before their EndpointSlices), so an apply
        // split over several transactions never lands backends before their service; lines keep input order.
        let writeOrder = objects.enumerated().sorted { ($0.element.key.kind, $0.offset) < ($1.element.key.kind, $1.offset) }
        let stored = try await existingRecords(of: objects.map(\.key))
        for object in writeOrder.map(\.element) {
            let key = Keyspace.key(of: object.key)
            let existing = stored[key]
            let previous = existing.flatMap { try? JSONText.parse($0.value) }
            let created = previous?["metadata"]?["creationTimestamp"]?.stringValue ?? RecordCoding.timestamp(now)
            var document = object.document
            document.set(["metadata", "creationTimestamp"], to: .string(created))
            if object.key.kind.isNamespaced {
                document.set(["metadata", "namespace"], to: .string(object.key.namespace))
            }
            result.warnings += object.warnings.map { "warning: \(object.key): \($0)" }
            stages.append(object.key.kind.applyOrder)
            if let existing, previous == document {
                outcomes[object.key] = .unchanged
                parts.append(Transaction(conditions: [Condition(key, .modRevision(existing.modRevision))], operations: []))
                continue
            }
            outcomes[object.key] = existing == nil ? .created : .configured
            parts.append(Transaction(conditions: [Condition(key, existing.map { .modRevision($0.modRevision) } ?? .absent)],
                                     operations: [.put(key: key, value: JSONText.encode(document))]))
        }
        if let revision = try await commit(parts, stages: stages) { result.revision = revision }
        for entry in entries {
            switch entry {
            case .object(let object):
                result.lines.append("\(object.key) \(outcomes[object.key]!.rawValue)")
            case .skipped(_, let resource):
                result.lines.append("skipped \(resource) (not handled)")
            }
        }
        return result
    }

    /// Deletes the handled objects the files name. Objects already gone are reported, the rest deleted.
    public func delete(_ files: [ManifestFile]) async throws -> ApplyResult {
        let keys = try Self.read(files).compactMap { entry -> ObjectKey? in
            if case .object(let object) = entry { return object.key }
            return nil
        }
        return try await delete(keys)
    }

    public func delete(_ keys: [ObjectKey]) async throws -> ApplyResult {
        var result = ApplyResult()
        var parts: [Transaction] = []
        var missing: [String] = []
        for key in keys {
            let storeKey = Keyspace.key(of: key)
            guard let existing = try await store.get(storeKey) else {
                missing.append("\(key.kind.resourceName) \"\(key.name)\"" + (key.kind.isNamespaced ? " in namespace \"\(key.namespace)\"" : ""))
                continue
            }
            parts.append(Transaction(conditions: [Condition(storeKey, .modRevision(existing.modRevision))],
                                     operations: [.delete(key: storeKey)]))
            result.lines.append("\(key.kind.resourceName) \"\(key.name)\" deleted")
        }
        // Nothing depends on the order of deletes: one stage.
        if let revision = try await commit(parts, stages: parts.map { _ in 0 }) { result.revision = revision }
        if !missing.isEmpty {
            if parts.isEmpty { throw ApplyError.notFound(missing) }
            result.warnings += missing.map { "error: \($0) not found" }
        }
        return result
    }
}

extension ClusterSnapshot {
    /// Just the pools, for validating an apply without reading every service.
    public static func loadPools(from store: any Store) async throws -> [IPAddressPool] {
        try await store.list(prefix: Keyspace.prefix(of: .ipAddressPool)).records.compactMap { record in
            guard let document = try? JSONText.parse(record.value) else { return nil }
            return try? IPAddressPool(document: document)
        }
    }
}
