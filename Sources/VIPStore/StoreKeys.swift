/// Rules on keys that hold for every backend whose keys are plain bytes (etcd, SQLite).
public enum StoreKeys {
    /// Keys such a backend could hold but this project never writes, refused before they are stored.
    public static func problem(with key: String) -> String? {
        if key.isEmpty { return "empty key" }
        if key.utf8.count > 4096 { return "longer than 4096 bytes" }
        if key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) { return "control character" }
        return nil
    }

    /// The first byte string after every key that begins with `prefix`: the prefix with its last byte
    /// incremented, trailing 0xff bytes dropped first. Nil when no such bound exists (the empty prefix).
    public static func end(ofPrefix prefix: [UInt8]) -> [UInt8]? {
        var end = prefix
        while let last = end.last {
            if last < 0xff {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return nil
    }
}
