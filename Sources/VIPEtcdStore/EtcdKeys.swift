import Foundation
import VIPStore

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

    /// `[start, end)` covering every key that begins with `prefix`: etcd's `range_end`, or `\0` ("to the
    /// end of the keyspace") when no byte string follows every such key.
    func range(prefix: String) -> (start: Data, end: Data) {
        let start = wire(prefix)
        return (start, Data(StoreKeys.end(ofPrefix: Array(start)) ?? [0]))
    }
}
