import VIPStore

/// Where one key lives: `<root>/<first segment>/<rest of the key>`, both parts percent-encoded.
/// A directory per first segment keeps `list(prefix: "leases/")` to one small directory
/// even when `services/` holds 100k records.
struct RecordLocation: Sendable, Hashable {
    var directoryName: String
    var fileName: String
}

/// What a file name inside a segment directory says about the key it holds.
enum NameMeaning: Sendable, Hashable {
    /// The name decodes to exactly this key.
    case key(String)
    /// A long key stored under a hash; the key is only known from the file's header.
    case hashed
    /// Not a name this store writes.
    case foreign
}

/// The key <-> file name mapping. Names use only `[A-Za-z0-9._-]` plus `%XX`, never start with `.`
/// (those are the store's own files), so any key byte round-trips and no key can escape its directory.
enum KeyLayout {
    static let maxKeyBytes = 8192
    /// The first segment becomes a directory name, which the file system limits to 255 bytes.
    static let maxDirectoryNameBytes = 200
    /// Longer encoded names are stored under a hash so deep keys still fit a 255-byte name.
    static let maxFileNameBytes = 200
    /// File name of a one-segment key such as `config`; `@` is always encoded elsewhere, so it cannot clash.
    static let wholeKeyFileName = "@"
    /// Marks a hashed file name; `~` is always encoded elsewhere.
    static let hashedMarker: UInt8 = UInt8(ascii: "~")

    /// Rejects keys the store cannot hold with the reason, before anything touches the disk.
    static func validate(_ key: String) throws {
        let bytes = Array(key.utf8)
        if bytes.isEmpty { throw StoreError.invalidKey(key, reason: "empty key") }
        if bytes.count > maxKeyBytes { throw StoreError.invalidKey(key, reason: "longer than \(maxKeyBytes) bytes") }
        if let reason = controlCharacterReason(key) { throw StoreError.invalidKey(key, reason: reason) }
        for segment in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            if segment.isEmpty { throw StoreError.invalidKey(key, reason: "empty segment") }
            if segment.elementsEqual(".".utf8) || segment.elementsEqual("..".utf8) {
                throw StoreError.invalidKey(key, reason: "'.' or '..' segment")
            }
        }
        if encode(firstSegment(bytes)).utf8.count > maxDirectoryNameBytes {
            throw StoreError.invalidKey(key, reason: "first segment too long (encoded over \(maxDirectoryNameBytes) bytes)")
        }
    }

    /// Prefixes may be partial keys, but never contain bytes no key can hold.
    static func validatePrefix(_ prefix: String) throws {
        if let reason = controlCharacterReason(prefix) { throw StoreError.invalidKey(prefix, reason: reason) }
    }

    static func controlCharacterReason(_ text: String) -> String? {
        for scalar in text.unicodeScalars where scalar.properties.generalCategory == .control {
            if scalar.value == 0 { return "contains NUL" }
            return "contains control character U+\(String(scalar.value, radix: 16, uppercase: true))"
        }
        return nil
    }

    /// The location of a validated key.
    static func location(of key: String) -> RecordLocation {
        let bytes = Array(key.utf8)
        let first = firstSegment(bytes)
        let directoryName = encode(first)
        if first.count == bytes.count { return RecordLocation(directoryName: directoryName, fileName: wholeKeyFileName) }
        let rest = bytes[(first.count + 1)...]
        var fileName = encode(rest)
        if fileName.utf8.count > maxFileNameBytes { fileName = hashedName(rest) }
        return RecordLocation(directoryName: directoryName, fileName: fileName)
    }

    /// What key a file named `fileName` in directory `directoryName` holds, judged by name alone.
    static func meaning(directoryName: String, fileName: String) -> NameMeaning {
        guard let first = decode(directoryName), !first.contains(UInt8(ascii: "/")) else { return .foreign }
        if fileName == wholeKeyFileName { return keyMeaning(first) }
        if fileName.utf8.first == hashedMarker {
            return fileName.utf8.count == 33 && fileName.utf8.dropFirst().allSatisfy(isLowerHex) ? .hashed : .foreign
        }
        guard let rest = decode(fileName) else { return .foreign }
        return keyMeaning(first + [UInt8(ascii: "/")] + rest)
    }

    /// Decoded first-segment bytes of a directory name, or nil when this store would not have made it.
    static func segment(directoryName: String) -> [UInt8]? {
        guard let bytes = decode(directoryName), !bytes.isEmpty, !bytes.contains(UInt8(ascii: "/")) else { return nil }
        return bytes
    }

    private static func keyMeaning(_ bytes: [UInt8]) -> NameMeaning {
        guard let key = String(validating: bytes, as: UTF8.self), (try? validate(key)) != nil,
              location(of: key).fileName.utf8.first != hashedMarker
        else { return .foreign }
        return .key(key)
    }

    static func firstSegment(_ bytes: [UInt8]) -> ArraySlice<UInt8> {
        bytes[..<(bytes.firstIndex(of: UInt8(ascii: "/")) ?? bytes.endIndex)]
    }

    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
            true
        default:
            false
        }
    }

    private static func isLowerHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// Percent-encodes every byte outside `[A-Za-z0-9._-]`, and a leading `.`.
    static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for (index, byte) in bytes.enumerated() {
            if isUnreserved(byte), !(index == 0 && byte == UInt8(ascii: ".")) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0xF)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Inverse of `encode`; nil for any name `encode` would not produce, so foreign files are recognised.
    static func decode(_ name: String) -> [UInt8]? {
        let input = Array(name.utf8)
        guard !input.isEmpty else { return nil }
        var out: [UInt8] = []
        var index = 0
        while index < input.count {
            let byte = input[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < input.count,
                      let high = hexDigits.firstIndex(of: input[index + 1]),
                      let low = hexDigits.firstIndex(of: input[index + 2]) else { return nil }
                out.append(UInt8(high << 4 | low))
                index += 3
            } else if isUnreserved(byte) {
                out.append(byte)
                index += 1
            } else {
                return nil
            }
        }
        return encode(out) == name ? out : nil
    }

    /// `~` and 128 bits of two independent FNV-1a hashes; the header's key guards against a collision.
    private static func hashedName(_ bytes: ArraySlice<UInt8>) -> String {
        func fnv(_ basis: UInt64) -> UInt64 {
            var hash = basis
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01B3
            }
            return hash
        }
        func hex(_ value: UInt64) -> String {
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }
        return "~" + hex(fnv(0xCBF2_9CE4_8422_2325)) + hex(fnv(0x6C62_272E_07BB_0142) ^ UInt64(bytes.count))
    }
}

/// The keys a prefix can reach, so list and watch open only the directories that matter.
struct PrefixScope: Sendable {
    let prefix: String
    let prefixBytes: [UInt8]
    /// With a `/` in the prefix only one segment directory can match; otherwise every directory
    /// whose segment starts with the prefix does.
    let directoryName: String?
    /// The prefix's first segment cannot exist (`..`, empty), so nothing matches.
    let matchesNothing: Bool

    init(_ prefix: String) {
        self.prefix = prefix
        prefixBytes = Array(prefix.utf8)
        if let slash = prefixBytes.firstIndex(of: UInt8(ascii: "/")) {
            let first = prefixBytes[..<slash]
            let name = KeyLayout.encode(first)
            matchesNothing = first.isEmpty || first.elementsEqual(".".utf8) || first.elementsEqual("..".utf8)
                || name.utf8.count > KeyLayout.maxDirectoryNameBytes
            directoryName = name
        } else {
            directoryName = nil
            matchesNothing = false
        }
    }

    /// Whether keys in the directory for this decoded segment can match.
    func includes(segment: [UInt8]) -> Bool {
        if matchesNothing { return false }
        if let directoryName { return KeyLayout.encode(segment) == directoryName }
        return segment.starts(with: prefixBytes)
    }

    /// Byte-wise prefix test, as etcd does; `String.hasPrefix` compares characters and would differ.
    func includes(key: String) -> Bool {
        !matchesNothing && key.utf8.starts(with: prefixBytes)
    }
}
