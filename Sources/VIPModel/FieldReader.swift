/// A problem with one field of one object, named by its path as kubectl names it (`spec.addresses[1]`).
public struct FieldError: Error, Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Reads typed fields out of a `Value` map while tracking the path, so every type error names its field.
public struct FieldReader: Sendable {
    public let fields: [String: Value]
    public let path: String

    public init(_ value: Value, path: String = "") throws(FieldError) {
        guard case .object(let fields) = value else {
            throw FieldError(path: path, message: "expected a map, got \(value.typeName) \(value.brief)")
        }
        self.fields = fields
        self.path = path
    }

    /// A reader over an absent map, for optional sections such as a Service without `spec`.
    public init(emptyAt path: String) {
        fields = [:]
        self.path = path
    }

    public func pathOf(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public func error(_ key: String, _ message: String) -> FieldError {
        FieldError(path: pathOf(key), message: message)
    }

    /// The raw value, treating an explicit `null` as absent, as Kubernetes does.
    public func raw(_ key: String) -> Value? {
        guard let value = fields[key], value != .null else { return nil }
        return value
    }

    private func typeError(_ key: String, expected: String, got value: Value) -> FieldError {
        error(key, "expected \(expected), got \(value.typeName) \(value.brief)")
    }

    public func string(_ key: String) throws(FieldError) -> String? {
        guard let value = raw(key) else { return nil }
        guard case .string(let text) = value else { throw typeError(key, expected: "a string", got: value) }
        return text
    }

    public func bool(_ key: String) throws(FieldError) -> Bool? {
        guard let value = raw(key) else { return nil }
        guard case .bool(let flag) = value else { throw typeError(key, expected: "true or false", got: value) }
        return flag
    }

    public func int(_ key: String) throws(FieldError) -> Int? {
        guard let value = raw(key) else { return nil }
        guard case .int(let number) = value, let result = Int(exactly: number) else {
            throw typeError(key, expected: "an integer", got: value)
        }
        return result
    }

    public func object(_ key: String) throws(FieldError) -> FieldReader? {
        guard let value = raw(key) else { return nil }
        return try FieldReader(value, path: pathOf(key))
    }

    public func list(_ key: String) throws(FieldError) -> [Value]? {
        guard let value = raw(key) else { return nil }
        guard case .array(let items) = value else { throw typeError(key, expected: "a list", got: value) }
        return items
    }

    public func objectList(_ key: String) throws(FieldError) -> [FieldReader] {
        guard let items = try list(key) else { return [] }
        var readers: [FieldReader] = []
        for (index, item) in items.enumerated() {
            readers.append(try FieldReader(item, path: "\(pathOf(key))[\(index)]"))
        }
        return readers
    }

    public func stringList(_ key: String) throws(FieldError) -> [String] {
        guard let items = try list(key) else { return [] }
        var strings: [String] = []
        for (index, item) in items.enumerated() {
            guard case .string(let text) = item else {
                throw FieldError(path: "\(pathOf(key))[\(index)]", message: "expected a string, got \(item.typeName) \(item.brief)")
            }
            strings.append(text)
        }
        return strings
    }

    public func stringMap(_ key: String) throws(FieldError) -> [String: String] {
        guard let value = raw(key) else { return [:] }
        guard case .object(let entries) = value else { throw typeError(key, expected: "a map of strings", got: value) }
        var map: [String: String] = [:]
        for (name, entry) in entries {
            guard case .string(let text) = entry else {
                throw FieldError(path: "\(pathOf(key))[\(name)]",
                                 message: "expected a string, got \(entry.typeName) \(entry.brief) (quote it)")
            }
            map[name] = text
        }
        return map
    }

    /// One of a fixed set of strings, with the allowed values in the error.
    public func choice<T: RawRepresentable & CaseIterable>(_ key: String, as type: T.Type) throws(FieldError) -> T?
    where T.RawValue == String {
        guard let text = try string(key) else { return nil }
        guard let result = T(rawValue: text) else {
            let allowed = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw error(key, "unsupported value \"\(text)\": must be one of \(allowed)")
        }
        return result
    }

    /// Keys present here but not in `known`, as full paths, for warnings about typos.
    public func unknownKeys(_ known: Set<String>) -> [String] {
        fields.keys.filter { !known.contains($0) }.sorted().map(pathOf)
    }
}
