import VIPStore

/// The redo log of one transaction: every final record, stamped with the new revision.
/// Written atomically before any record changes, so a crash mid-transaction is finished by the next writer.
struct Intent: Sendable, Hashable {
    var revision: Revision
    var entries: [StoredEntry]

    static let fileName = "intent"
    private static let magic = "MVIPINTENT1"

    func encode() -> [UInt8] {
        var bytes = Array("\(Self.magic) \(revision) \(entries.count)\n".utf8)
        for entry in entries {
            let record = RecordFile.encode(entry)
            bytes.append(contentsOf: "\(record.count)\n".utf8)
            bytes.append(contentsOf: record)
        }
        return bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> Intent {
        var cursor = bytes.startIndex
        func line() throws -> [Substring] {
            guard let newline = bytes[cursor...].prefix(64).firstIndex(of: UInt8(ascii: "\n")) else {
                throw RecordFormatError("truncated intent")
            }
            defer { cursor = newline + 1 }
            return String(decoding: bytes[cursor..<newline], as: UTF8.self).split(separator: " ")
        }
        let header = try line()
        guard header.count == 3, header[0] == magic, let revision = Revision(header[1]), let count = Int(header[2]),
              revision > 0, count >= 0
        else { throw RecordFormatError("malformed intent header") }
        var entries: [StoredEntry] = []
        for _ in 0..<count {
            let sizeLine = try line()
            guard sizeLine.count == 1, let size = Int(sizeLine[0]), size > 0, cursor + size <= bytes.endIndex else {
                throw RecordFormatError("truncated intent")
            }
            let entry = try RecordFile.decode(bytes[cursor..<(cursor + size)])
            guard entry.modRevision == revision else { throw RecordFormatError("intent entry at another revision") }
            entries.append(entry)
            cursor += size
        }
        guard cursor == bytes.endIndex else { throw RecordFormatError("trailing bytes in intent") }
        return Intent(revision: revision, entries: entries)
    }
}
