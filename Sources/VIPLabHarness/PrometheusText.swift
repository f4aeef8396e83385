/// A strict reader of the Prometheus text exposition format (0.0.4), so tests can say that what the
/// daemons serve parses, and read values out of it.
public struct PrometheusSample: Sendable, Hashable {
    public var name: String
    public var labels: [String: String]
    public var value: Double
}

public struct PrometheusParseError: Error, CustomStringConvertible {
    public var line: Int
    public var reason: String
    public var description: String { "line \(line): \(reason)" }
}

public enum PrometheusText {
    public static func parse(_ text: String) throws -> [PrometheusSample] {
        var samples: [PrometheusSample] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3)
                guard parts.count >= 2 else { continue }
                if parts[1] == "TYPE" {
                    guard parts.count == 4, isName(parts[2]),
                          ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else {
                        throw PrometheusParseError(line: number, reason: "bad TYPE line: \(line)")
                    }
                } else if parts[1] == "HELP" {
                    guard parts.count >= 3, isName(parts[2]) else { throw PrometheusParseError(line: number, reason: "bad HELP line") }
                }
                continue
            }
            samples.append(try sample(Substring(line), number))
        }
        return samples
    }

    static func isName<S: StringProtocol>(_ text: S) -> Bool {
        guard let first = text.unicodeScalars.first else { return false }
        let head: (Unicode.Scalar) -> Bool = { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || $0 == "_" || $0 == ":" }
        return head(first) && text.unicodeScalars.allSatisfy { head($0) || ("0"..."9").contains($0) }
    }

    static func sample(_ line: Substring, _ number: Int) throws -> PrometheusSample {
        var rest = line[...]
        let nameEnd = rest.firstIndex { $0 == "{" || $0 == " " } ?? rest.endIndex
        let name = String(rest[..<nameEnd])
        guard isName(name) else { throw PrometheusParseError(line: number, reason: "bad metric name \"\(name)\"") }
        rest = rest[nameEnd...]
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                guard let equals = rest.firstIndex(of: "=") else { throw PrometheusParseError(line: number, reason: "label without =") }
                let key = String(rest[..<equals])
                guard isName(key) else { throw PrometheusParseError(line: number, reason: "bad label name \"\(key)\"") }
                rest = rest[rest.index(after: equals)...]
                guard rest.first == "\"" else { throw PrometheusParseError(line: number, reason: "unquoted label value") }
                rest = rest.dropFirst()
                var value = ""
                var escaped = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if escaped {
                        switch character {
                        case "n": value.append("\n")
                        case "\\", "\"": value.append(character)
                        default: throw PrometheusParseError(line: number, reason: "bad escape \\\(character)")
                        }
                        escaped = false
                    } else if character == "\\" {
                        escaped = true
                    } else if character == "\"" {
                        break
                    } else {
                        value.append(character)
                    }
                }
                labels[key] = value
                if rest.first == "," { rest = rest.dropFirst() }
                guard !rest.isEmpty else { throw PrometheusParseError(line: number, reason: "unterminated labels") }
            }
            rest = rest.dropFirst()
        }
        let fields = rest.split(separator: " ")
        guard (1...2).contains(fields.count) else { throw PrometheusParseError(line: number, reason: "expected a value") }
        let text = String(fields[0])
        let value: Double? = switch text {
        case "+Inf": .infinity
        case "-Inf": -.infinity
        case "NaN": .nan
        default: Double(text)
        }
        guard let value else { throw PrometheusParseError(line: number, reason: "bad value \"\(text)\"") }
        return PrometheusSample(name: name, labels: labels, value: value)
    }

    /// The value of the one sample with this name and these labels (others ignored), or nil.
    public static func value(_ samples: [PrometheusSample], _ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?.value
    }
}
