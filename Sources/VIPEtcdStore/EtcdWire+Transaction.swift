import Foundation

/// A request body that writes its own JSON instead of going through `JSONEncoder`.
protocol HandWrittenJSON {
    func json() -> [UInt8]
}

/// Every store write is a transaction: `JSONEncoder`'s generic path was 37% of the CPU of a controller pass
/// over 10k services on etcd. The text carries what `JSONEncoder`'s does: the same fields, the unset ones
/// left out, int64 as decimal strings and bytes as base64 (neither needs escaping).
extension EtcdWire.TxnRequest: HandWrittenJSON {
    func json() -> [UInt8] {
        var json = JSONStream()
        json.openObject()
        json.openArray("compare")
        for compare in compare {
            json.openObject()
            json.bytes("key", compare.key)
            json.plain("target", compare.target)
            json.plain("result", compare.result)
            json.int64("version", compare.version)
            json.int64("create_revision", compare.create_revision)
            json.int64("mod_revision", compare.mod_revision)
            json.closeObject()
        }
        json.closeArray()
        for (name, ops) in [("success" as StaticString, success), ("failure", failure)] {
            json.openArray(name)
            for op in ops { op.write(to: &json) }
            json.closeArray()
        }
        json.closeObject()
        return json.bytes
    }
}

extension EtcdWire.RequestOp {
    fileprivate func write(to json: inout JSONStream) {
        json.openObject()
        if let range = request_range {
            json.openObject("request_range")
            json.bytes("key", range.key)
            if let end = range.range_end { json.bytes("range_end", end) }
            json.int64("limit", range.limit)
            json.int64("revision", range.revision)
            if let keysOnly = range.keys_only { json.literal("keys_only", keysOnly ? "true" : "false") }
            json.closeObject()
        }
        if let put = request_put {
            json.openObject("request_put")
            json.bytes("key", put.key)
            json.bytes("value", put.value)
            json.closeObject()
        }
        if let delete = request_delete_range {
            json.openObject("request_delete_range")
            json.bytes("key", delete.key)
            json.closeObject()
        }
        json.closeObject()
    }
}

/// JSON written front to back: each value after the first in an object or array gets its comma.
private struct JSONStream {
    private(set) var bytes: [UInt8] = []
    private var needsComma = false

    init() { bytes.reserveCapacity(1024) }

    /// The comma before a value, and its key inside an object.
    private mutating func start(_ name: StaticString?) {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
        if let name {
            bytes.append(UInt8(ascii: "\""))
            bytes.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            bytes.append(contentsOf: "\":".utf8)
        }
        needsComma = true
    }

    private mutating func open(_ name: StaticString?, _ bracket: Unicode.Scalar) {
        start(name)
        bytes.append(UInt8(ascii: bracket))
        needsComma = false
    }

    private mutating func close(_ bracket: Unicode.Scalar) {
        bytes.append(UInt8(ascii: bracket))
        needsComma = true
    }

    mutating func openObject(_ name: StaticString? = nil) { open(name, "{") }
    mutating func closeObject() { close("}") }
    mutating func openArray(_ name: StaticString) { open(name, "[") }
    mutating func closeArray() { close("]") }

    /// A string that needs no escaping: an enum name, a number, base64.
    mutating func plain(_ name: StaticString, _ text: String) {
        start(name)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: text.utf8)
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func literal(_ name: StaticString, _ text: StaticString) {
        start(name)
        bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func bytes(_ name: StaticString, _ data: Data) { plain(name, data.base64EncodedString()) }

    mutating func int64(_ name: StaticString, _ value: EtcdWire.Int64String?) {
        if let value { plain(name, String(value.value)) }
    }
}
