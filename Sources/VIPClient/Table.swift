import Foundation
import VIPModel
import VIPStore
import Yams

/// kubectl's plain table: upper-case headers, columns padded to their widest cell, three spaces apart.
public struct Table: Sendable {
    public var headers: [String]
    public var rows: [[String]] = []

    public init(_ headers: [String]) { self.headers = headers }

    public mutating func add(_ row: [String]) { rows.append(row) }

    public var rendered: String {
        let widths = headers.indices.map { column in
            ([headers] + rows).map { $0[column].count }.max() ?? 0
        }
        return ([headers] + rows).map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "   ")
        }.joined(separator: "\n")
    }
}

public enum OutputFormat: String, Sendable, CaseIterable {
    case table, wide, json, yaml
}

/// Renders document trees as kubectl's `-o json` and `-o yaml` do.
public enum DocumentOutput {
    public static func json(_ value: Value) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
    }

    public static func yaml(_ value: Value) -> String {
        (try? Yams.serialize(node: node(value))) ?? ""
    }

    static func node(_ value: Value) -> Node {
        switch value {
        case .null: Node("null", Tag(.null))
        case .bool(let flag): Node(flag ? "true" : "false", Tag(.bool))
        case .int(let number): Node(String(number), Tag(.int))
        case .double(let number): Node(String(number), Tag(.float))
        case .string(let text): Node(text, Tag(.str))
        case .array(let items): Node(items.map(node))
        case .object(let fields): Node(fields.sorted { $0.key < $1.key }.map { (Node($0.key), node($0.value)) })
        }
    }

    /// A Kubernetes `List` of items, as `kubectl get -o json` prints several objects.
    public static func list(_ items: [Value]) -> Value {
        .object(["apiVersion": .string("v1"), "kind": .string("List"), "items": .array(items),
                 "metadata": .object(["resourceVersion": .string("")])])
    }
}

/// kubectl's AGE column: `45s`, `12m`, `5h`, `3d`.
public func age(since timestamp: String?, now: Date = Date()) -> String {
    guard let timestamp, let created = RecordCoding.date(timestamp) else { return "<unknown>" }
    let seconds = max(0, Int(now.timeIntervalSince(created)))
    switch seconds {
    case ..<120: return "\(seconds)s"
    case ..<(120 * 60): return "\(seconds / 60)m"
    case ..<(48 * 3600): return "\(seconds / 3600)h"
    default: return "\(seconds / 86400)d"
    }
}
