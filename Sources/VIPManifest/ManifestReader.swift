import VIPModel
import Yams

/// Where a document came from: the file, its 1-based position among the file's documents, and, for an
/// object inside a `kind: List` document (what `kubectl get -o yaml` writes), its 0-based index in `items`.
public struct DocumentOrigin: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var index: Int
    public var item: Int?

    public init(file: String, index: Int, item: Int? = nil) {
        self.file = file
        self.index = index
        self.item = item
    }

    /// `export.yaml: document 1`, without the item.
    public var document: String { "\(file): document \(index)" }

    /// `pools.yaml: document 2`, or `export.yaml: document 1, items[3]` inside a List.
    public var description: String { document + (item.map { ", items[\($0)]" } ?? "") }
}

/// Bad input, named down to the field: `pools.yaml: document 2 (IPAddressPool "a"): spec.addresses[0]: ...`.
public struct ManifestError: Error, Sendable, Hashable, CustomStringConvertible {
    public var origin: DocumentOrigin
    /// `IPAddressPool "a"`, when the document got far enough to have one.
    public var object: String?
    public var field: FieldError

    public init(origin: DocumentOrigin, object: String? = nil, field: FieldError) {
        self.origin = origin
        self.object = object
        self.field = field
    }

    /// The item of a List goes in the parentheses with the object: `document 1 (items[3], EndpointSlice "x")`.
    public var description: String {
        let details = [origin.item.map { "items[\($0)]" }, object].compactMap { $0 }
        return origin.document + (details.isEmpty ? "" : " (\(details.joined(separator: ", ")))") + ": \(field)"
    }
}

/// A document of a handled kind, decoded and validated on its own.
public struct ManifestObject: Sendable, Hashable {
    public var origin: DocumentOrigin
    public var resource: Resource
    /// The document as written, kept whole for the store.
    public var document: Value
    public var warnings: [String]

    public var key: ObjectKey { resource.key }
    public var label: String { "\(resource.kind.rawValue) \"\(resource.meta.name)\"" }
}

public enum ManifestEntry: Sendable, Hashable {
    case object(ManifestObject)
    /// A kind MetalVIP doesn't handle, as kubectl would name it: `deployment.apps/web`.
    case skipped(origin: DocumentOrigin, resource: String)
}

/// Reads multi-document YAML as kubectl would, keeping what MetalVIP handles and naming what it skips.
public enum ManifestReader {
    public static func read(_ text: String, file: String) throws(ManifestError) -> [ManifestEntry] {
        var entries: [ManifestEntry] = []
        let parser: Parser
        do {
            // Plain scalars are resolved in `convert`: the default resolver runs regular expressions on every
            // mapping key while Yams checks for duplicates, a tenth of a 10k-service apply.
            parser = try Parser(yaml: text, resolver: .basic)
        } catch {
            throw ManifestError(origin: DocumentOrigin(file: file, index: 1), field: FieldError(path: "", message: yamlMessage(error)))
        }
        var index = 0
        while true {
            index += 1
            let origin = DocumentOrigin(file: file, index: index)
            let node: Node
            do {
                guard let next = try parser.nextRoot() else { break }
                node = next
            } catch {
                throw ManifestError(origin: origin, field: FieldError(path: "", message: yamlMessage(error)))
            }
            let value: Value
            do {
                var path = NodePath()
                value = try convert(node, path: &path)
            } catch {
                throw ManifestError(origin: origin, field: error)
            }
            entries += try self.entries(for: value, origin: origin)
        }
        return entries
    }

    /// A document's entries: one for an object, one per item for a `kind: List`, none for an empty document.
    static func entries(for value: Value, origin: DocumentOrigin) throws(ManifestError) -> [ManifestEntry] {
        guard let items = try listItems(value, origin: origin) else {
            return try entry(for: value, origin: origin).map { [$0] } ?? []
        }
        var entries: [ManifestEntry] = []
        for (index, item) in items.enumerated() {
            var itemOrigin = origin
            itemOrigin.item = index
            if try listItems(item, origin: itemOrigin) != nil {
                throw ManifestError(origin: itemOrigin, field: FieldError(path: "kind", message: "a List inside a List is not supported"))
            }
            if let entry = try entry(for: item, origin: itemOrigin) { entries.append(entry) }
        }
        return entries
    }

    /// The `items` of a kubectl `List` (`apiVersion: v1`, `kind: List`); nil when the document is something else.
    static func listItems(_ value: Value, origin: DocumentOrigin) throws(ManifestError) -> [Value]? {
        guard case .object(let fields) = value, fields["kind"] == Value.string("List"), fields["apiVersion"] == Value.string("v1") else {
            return nil
        }
        do throws(FieldError) {
            return try FieldReader(value).list("items") ?? []
        } catch {
            throw ManifestError(origin: origin, field: error)
        }
    }

    static func entry(for value: Value, origin: DocumentOrigin) throws(ManifestError) -> ManifestEntry? {
        if value == .null { return nil }  // an empty document, such as a trailing `---`
        let root: FieldReader
        let kindName: String
        let apiVersion: String
        do throws(FieldError) {
            root = try FieldReader(value)
            guard let kind = try root.string("kind"), !kind.isEmpty else { throw root.error("kind", "is required") }
            guard let version = try root.string("apiVersion"), !version.isEmpty else {
                throw root.error("apiVersion", "is required")
            }
            kindName = kind
            apiVersion = version
        } catch {
            throw ManifestError(origin: origin, field: error)
        }
        let objectName = (try? root.object("metadata")?.string("name")) ?? nil
        let label = "\(kindName) \"\(objectName ?? "")\""
        guard let kind = Kind(rawValue: kindName) else {
            return .skipped(origin: origin, resource: skippedName(kind: kindName, apiVersion: apiVersion, name: objectName))
        }
        guard kind.acceptedAPIVersions.contains(apiVersion) else {
            if isForeign(apiVersion: apiVersion, kind: kind) {
                return .skipped(origin: origin, resource: skippedName(kind: kindName, apiVersion: apiVersion, name: objectName))
            }
            throw ManifestError(origin: origin, object: label, field: FieldError(
                path: "apiVersion", message: "\"\(apiVersion)\" is not supported for kind \(kindName): use \"\(kind.apiVersion)\""))
        }
        do {
            let resource = try Resource(kind: kind, document: value)
            return .object(ManifestObject(origin: origin, resource: resource, document: value,
                                          warnings: Resource.warnings(kind: kind, document: value)))
        } catch {
            throw ManifestError(origin: origin, object: label, field: error)
        }
    }

    /// A same-named kind from another API group (a CRD called Service or Endpoints) is not Kubernetes' own, so it
    /// is skipped like any other kind. A group of ours (core, `discovery.k8s.io`, `metallb.io`) with the wrong version
    /// is a mistake, and gets an error: `discovery.k8s.io/v1beta1` EndpointSlice, `metallb.io/v1beta1` Service.
    /// MetalLB's own kinds are never foreign: a misspelt group there would silently drop a pool.
    static func isForeign(apiVersion: String, kind: Kind) -> Bool {
        let parts = apiVersion.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }  // the core group: `v1`, `v2`
        let ourGroups: Set<Substring> = ["", "metallb.io", "discovery.k8s.io"]
        switch kind {
        case .ipAddressPool, .l2Advertisement: return false
        case .namespace, .service, .endpoints, .endpointSlice: return !ourGroups.contains(parts[0])
        }
    }

    /// kubectl's `kind.group/name`: `deployment.apps/web`, `configmap/settings`.
    static func skippedName(kind: String, apiVersion: String, name: String?) -> String {
        let group = apiVersion.split(separator: "/").count == 2 ? "." + apiVersion.split(separator: "/")[0] : ""
        return "\(kind.lowercased())\(group)/\(name ?? "<unnamed>")"
    }

    /// The words the YAML 1.1 core types read as booleans or null; any other plain scalar that starts with a
    /// letter is a string.
    private static let typedWords: Set<String> = [
        "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
        "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL",
    ]

    /// What Yams' default resolver makes of a plain scalar; names, kinds and protocols (most of a manifest)
    /// are settled without its regular expressions, since no number, null or timestamp starts with a letter.
    static func implicitTag(of string: String) -> Tag.Name {
        if let first = string.utf8.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first | 0x20),
           !typedWords.contains(string) {
            return .str
        }
        // Ports and counts: a plain decimal is an integer under every YAML 1.1 rule, no expression needed.
        if isPlainDecimal(string.utf8) { return .int }
        return Resolver.default.resolveTag(of: Node(string))
    }

    /// `[-+]?(0|[1-9][0-9]*)`: the decimal integers, without YAML 1.1's underscores, octal, hex or base 60.
    static func isPlainDecimal(_ text: String.UTF8View) -> Bool {
        var digits = text[...]
        if let sign = digits.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") { digits = digits.dropFirst() }
        guard let first = digits.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else { return false }
        if first == UInt8(ascii: "0") { return digits.count == 1 }
        return digits.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// YAML to `Value`, following the YAML 1.1 core types Kubernetes' own parser resolves. `path` is where
    /// `node` sits, turned into text only for an error.
    static func convert(_ node: Node, path: inout NodePath) throws(FieldError) -> Value {
        switch node {
        case .scalar(let scalar):
            let tag = scalar.tag.rawValue == Tag.Name.implicit.rawValue ? implicitTag(of: scalar.string) : Tag.Name(rawValue: node.tag.rawValue)
            switch tag {
            case .null: return .null
            case .bool: return node.bool.map(Value.bool) ?? .string(scalar.string)
            case .int:
                // Plain decimals directly; Yams reads the YAML 1.1 forms (octal 0755, hex, binary, base 60).
                if isPlainDecimal(scalar.string.utf8), let number = Int64(scalar.string) { return .int(number) }
                if let number = node.int { return .int(Int64(number)) }
                if let number = Int64(scalar.string.replacingOccurrences(of: "_", with: "")) { return .int(number) }
                throw FieldError(path: path.text, message: "integer \(scalar.string) is out of range")
            case .float: return node.float.map(Value.double) ?? .string(scalar.string)
            default: return .string(scalar.string)
            }
        case .sequence(let sequence):
            var items: [Value] = []
            items.reserveCapacity(sequence.count)
            for (index, item) in sequence.enumerated() {
                path.components.append(.index(index))
                defer { path.components.removeLast() }
                items.append(try convert(item, path: &path))
            }
            return .array(items)
        case .mapping(let mapping):
            var fields: [String: Value] = [:]
            fields.reserveCapacity(mapping.count)
            for (keyNode, valueNode) in mapping {
                guard case .scalar(let keyScalar) = keyNode else {
                    throw FieldError(path: path.text, message: "map keys must be plain strings")
                }
                let key = keyScalar.string
                path.components.append(.key(key))
                defer { path.components.removeLast() }
                if fields[key] != nil { throw FieldError(path: path.text, message: "duplicate key \"\(key)\"") }
                fields[key] = try convert(valueNode, path: &path)
            }
            return .object(fields)
        case .alias:
            throw FieldError(path: path.text, message: "YAML aliases are not supported")
        }
    }

    /// Yams' errors carry a code snippet across lines; one line with position and problem reads better.
    static func yamlMessage(_ error: Error) -> String {
        guard let yamlError = error as? YamlError else { return "invalid YAML: \(error)" }
        switch yamlError {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            let context = context.map { "\($0.text) " } ?? ""
            return "invalid YAML at line \(mark.line), column \(mark.column): \(context)\(problem)"
        case let .reader(problem, offset, _, _):
            return "invalid YAML input\(offset.map { " at byte \($0)" } ?? ""): \(problem)"
        case let .duplicatedKeysInMapping(duplicates, context):
            return "invalid YAML at line \(context.mark.line): duplicate key(s) \(duplicates.sorted().joined(separator: ", "))"
        default:
            return "invalid YAML: \(yamlError)"
        }
    }
}

import Foundation

/// Where a YAML node sits in its document: `spec.ports[0].port`. Kept as components while converting and
/// rendered only for an error, so a field that converts fine costs no string.
struct NodePath {
    enum Component {
        case key(String)
        case index(Int)
    }

    var components: [Component] = []

    var text: String {
        var text = ""
        for component in components {
            switch component {
            case .key(let key): text += text.isEmpty ? key : "." + key
            case .index(let index): text += "[\(index)]"
            }
        }
        return text
    }
}
