import Foundation

/// Store keys as etcd keys: the configured prefix in front, bytes on the wire.
struct EtcdKeys: Sendable {
    let prefix: String

    func wire(_ key: String) -> Data { Data((prefix + key).utf8) }

    /// The store key for an etcd key, or nil for one outside the prefix.
    func local(_ key: Data) -> String? {
        let text = String(decoding: key, as: UTF8.self)
        guard text.hasPrefix(prefix) else { return nil }
        return String(text.dropFirst(prefix.count))
    }

    /// `[start, end)` covering every key that begins with `prefix`: etcd's `range_end` is the prefix
    /// with its last byte incremented (trailing 0xff bytes dropped first).
    func range(prefix: String) -> (start: Data, end: Data) {
        let start = wire(prefix)
        var end = Array(start)
        while let last = end.last {
            if last < 0xff {
                end[end.count - 1] = last + 1
                return (start, Data(end))
            }
            end.removeLast()
        }
        return (start, Data([0]))
    }

    /// Keys etcd could hold but this project never writes, refused before they reach the wire.
    static func problem(with key: String) -> String? {
        if key.isEmpty { return "empty key" }
        if key.utf8.count > 4096 { return "longer than 4096 bytes" }
        if key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) { return "control character" }
        return nil
    }
}
