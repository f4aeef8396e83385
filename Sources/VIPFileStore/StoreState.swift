import Foundation
import VIPStore

/// The store-wide counters in `.meta/state`, replaced atomically under the write lock. A commit writes it
/// after its records, so a reader that sees revision R knows every record of R and before is on disk.
struct StoreState: Sendable, Hashable {
    /// Last committed revision.
    var revision: Revision = 0
    /// Watches must start at or after this; tombstones at or below it may be gone.
    var compacted: Revision = 0
    /// Tombstones written since the last compaction scan; drives automatic compaction.
    var tombstones: Int64 = 0
    /// Revision at which writers next sweep tombstones and stale temp files.
    var nextMaintenance: Revision = 0

    static let fileName = "state"
    private static let magic = "MVIPSTATE1"

    func encode() -> [UInt8] {
        Array("\(Self.magic) \(revision) \(compacted) \(tombstones) \(nextMaintenance)\n".utf8)
    }

    static func decode(_ bytes: [UInt8]) throws -> StoreState {
        let fields = String(decoding: bytes, as: UTF8.self).split(separator: " ")
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard fields.count == 5, fields[0] == magic,
              let revision = Revision(fields[1]), let compacted = Revision(fields[2]),
              let tombstones = Int64(fields[3]), let next = Revision(fields[4]),
              revision >= 0, compacted >= 0, compacted <= revision
        else { throw RecordFormatError("malformed state file") }
        return StoreState(revision: revision, compacted: compacted, tombstones: tombstones, nextMaintenance: next)
    }
}
