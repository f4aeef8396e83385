import Foundation
import VIPStore

/// What one record file holds: a live record or the tombstone a delete leaves for watchers.
struct StoredEntry: Sendable, Hashable {
    var key: String
    var modRevision: Revision
    /// Zero for a tombstone.
    var createRevision: Revision
    /// nil for a tombstone.
    var value: [UInt8]?

    var isTombstone: Bool { value == nil }

    static func live(_ key: String, value: [UInt8], createRevision: Revision, modRevision: Revision) -> StoredEntry {
        StoredEntry(key: key, modRevision: modRevision, createRevision: createRevision, value: value)
    }

    static func tombstone(_ key: String, revision: Revision) -> StoredEntry {
        StoredEntry(key: key, modRevision: revision, createRevision: 0, value: nil)
    }

    var record: Record? {
        value.map { Record(key: key, value: Data($0), createRevision: createRevision, modRevision: modRevision) }
    }

    var event: WatchEvent {
        if let record { .put(record) } else { .delete(key: key, revision: modRevision) }
    }
}

/// Why a file could not be read as a record; reported in `Listing.skipped`, never fatal.
struct RecordFormatError: Error, Sendable, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The on-disk record format: one ASCII header line, then the raw key and value bytes.
///
///     MVIP1 P <createRevision> <modRevision> <keyLength> <valueLength> <crc32>\n<key><value>
///     MVIP1 D 0 <revision> <keyLength> 0 <crc32>\n<key>
///
/// Lengths and the CRC-32 of key+value catch truncated, foreign and bit-rotted files; the raw value
/// keeps `get` to one read without base64.
enum RecordFile {
    static let magic = "MVIP1"
    private static let maxHeaderBytes = 128

    static func encode(_ entry: StoredEntry) -> [UInt8] {
        let key = Array(entry.key.utf8)
        let value = entry.value ?? []
        var crc = CRC32()
        crc.update(key)
        crc.update(value)
        let kind = entry.isTombstone ? "D" : "P"
        let header = "\(magic) \(kind) \(entry.createRevision) \(entry.modRevision) \(key.count) \(value.count) \(crc.hex)\n"
        var bytes = Array(header.utf8)
        bytes.reserveCapacity(bytes.count + key.count + value.count)
        bytes.append(contentsOf: key)
        bytes.append(contentsOf: value)
        return bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> StoredEntry {
        try decode(bytes[...])
    }

    static func decode(_ bytes: ArraySlice<UInt8>) throws -> StoredEntry {
        if bytes.isEmpty { throw RecordFormatError("empty file") }
        guard let newline = bytes.prefix(maxHeaderBytes).firstIndex(of: UInt8(ascii: "\n")) else {
            throw RecordFormatError("no record header")
        }
        let fields = bytes[bytes.startIndex..<newline].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        guard fields.count == 7, fields[0] == magic else { throw RecordFormatError("not a record file") }
        guard let createRevision = Revision(fields[2]), let modRevision = Revision(fields[3]),
              let keyLength = Int(fields[4]), let valueLength = Int(fields[5]),
              createRevision >= 0, modRevision > 0, keyLength > 0, valueLength >= 0
        else { throw RecordFormatError("malformed record header") }
        let body = bytes[(newline + 1)...]
        guard body.count == keyLength + valueLength else {
            throw RecordFormatError("length mismatch: header says \(keyLength + valueLength) bytes, file has \(body.count)")
        }
        let keyBytes = body.prefix(keyLength)
        let valueBytes = body.dropFirst(keyLength)
        var crc = CRC32()
        crc.update(keyBytes)
        crc.update(valueBytes)
        guard crc.hex == fields[6] else { throw RecordFormatError("checksum mismatch") }
        guard let key = String(validating: keyBytes, as: UTF8.self) else { throw RecordFormatError("key is not UTF-8") }
        switch fields[1] {
        case "P":
            return .live(key, value: Array(valueBytes), createRevision: createRevision, modRevision: modRevision)
        case "D":
            guard valueLength == 0 else { throw RecordFormatError("tombstone with a value") }
            return .tombstone(key, revision: modRevision)
        default:
            throw RecordFormatError("unknown record kind \(fields[1])")
        }
    }
}

/// CRC-32 (IEEE), enough to tell a damaged record from a whole one.
struct CRC32 {
    private static let table: [UInt32] = (0..<256).map { index in
        var c = UInt32(index)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    private var state: UInt32 = 0xFFFF_FFFF

    mutating func update(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            state = Self.table[Int((state ^ UInt32(byte)) & 0xFF)] ^ (state >> 8)
        }
    }

    var value: UInt32 { state ^ 0xFFFF_FFFF }

    var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}
