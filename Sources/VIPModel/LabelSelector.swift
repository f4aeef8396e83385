/// A Kubernetes label selector: `matchLabels` and `matchExpressions`, all of which must hold.
/// An empty selector matches everything, as in MetalLB's selectors.
public struct LabelSelector: Sendable, Hashable {
    public enum Operator: String, Sendable, Hashable, CaseIterable {
        case `in` = "In", notIn = "NotIn", exists = "Exists", doesNotExist = "DoesNotExist"
    }

    public struct Requirement: Sendable, Hashable {
        public var key: String
        public var `operator`: Operator
        public var values: [String]

        public init(key: String, operator: Operator, values: [String] = []) {
            self.key = key
            self.operator = `operator`
            self.values = values
        }

        public func matches(_ labels: [String: String]) -> Bool {
            switch `operator` {
            case .in: labels[key].map(values.contains) ?? false
            case .notIn: !(labels[key].map(values.contains) ?? false)
            case .exists: labels[key] != nil
            case .doesNotExist: labels[key] == nil
            }
        }
    }

    public var matchLabels: [String: String]
    public var matchExpressions: [Requirement]

    public init(matchLabels: [String: String] = [:], matchExpressions: [Requirement] = []) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    public func matches(_ labels: [String: String]) -> Bool {
        matchLabels.allSatisfy { labels[$0.key] == $0.value } && matchExpressions.allSatisfy { $0.matches(labels) }
    }

    public init(reading reader: FieldReader) throws(FieldError) {
        matchLabels = try reader.stringMap("matchLabels")
        matchExpressions = []
        for expression in try reader.objectList("matchExpressions") {
            guard let key = try expression.string("key"), !key.isEmpty else { throw expression.error("key", "is required") }
            guard let op = try expression.choice("operator", as: Operator.self) else {
                throw expression.error("operator", "is required")
            }
            let values = try expression.stringList("values")
            let needsValues = op == .in || op == .notIn
            if needsValues && values.isEmpty {
                throw expression.error("values", "must be non-empty for operator \(op.rawValue)")
            }
            if !needsValues && !values.isEmpty {
                throw expression.error("values", "must be empty for operator \(op.rawValue)")
            }
            matchExpressions.append(Requirement(key: key, operator: op, values: values))
        }
    }

    /// Reads a list of selectors, such as `serviceSelectors`.
    static func list(_ key: String, in reader: FieldReader) throws(FieldError) -> [LabelSelector] {
        var selectors: [LabelSelector] = []
        for item in try reader.objectList(key) { selectors.append(try LabelSelector(reading: item)) }
        return selectors
    }
}
