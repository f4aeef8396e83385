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
                value = try convert(node, path: "")
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
        return Resolver.default.resolveTag(of: Node(string))
    }

    /// YAML to `Value`, following the YAML 1.1 core types Kubernetes' own parser resolves.
    static func convert(_ node: Node, path: String) throws(FieldError) -> Value {
        switch node {
        case .scalar(let scalar):
            let tag = scalar.tag.rawValue == Tag.Name.implicit.rawValue ? implicitTag(of: scalar.string) : Tag.Name(rawValue: node.tag.rawValue)
            switch tag {
            case .null: return .null
            case .bool: return node.bool.map(Value.bool) ?? .string(scalar.string)
            case .int:
                if let number = Int64(scalar.string.replacingOccurrences(of: "_", with: "")) { return .int(number) }
                if let number = node.int { return .int(Int64(number)) }
                throw FieldError(path: path, message: "integer \(scalar.string) is out of range")
            case .float: return node.float.map(Value.double) ?? .string(scalar.string)
            default: return .string(scalar.string)
            }
        case .sequence(let sequence):
            var items: [Value] = []
            for (index, item) in sequence.enumerated() { items.append(try convert(item, path: "\(path)[\(index)]")) }
            return .array(items)
        case .mapping(let mapping):
            var fields: [String: Value] = [:]
            for (keyNode, valueNode) in mapping {
                guard case .scalar(let keyScalar) = keyNode else {
                    throw FieldError(path: path, message: "map keys must be plain strings")
                }
                let key = keyScalar.string
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                if fields[key] != nil { throw FieldError(path: childPath, message: "duplicate key \"\(key)\"") }
                fields[key] = try convert(valueNode, path: childPath)
            }
            return .object(fields)
        case .alias:
            throw FieldError(path: path, message: "YAML aliases are not supported")
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
