import Foundation
import Logging

/// How log lines are written: `text` is logfmt (key=value), `json` one object per line.
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}

/// One line per event on standard error, with `ts`, `level`, `component` (the logger's label), `msg`, and
/// the metadata (node, service, ip, ...) as fields, so a log pipeline can index them.
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public let component: String
    public let format: LogFormat

    public init(component: String, format: LogFormat, level: Logger.Level) {
        self.component = component
        self.format = format
        self.logLevel = level
    }

    /// Installs the handler for the whole process (once).
    public static func bootstrap(format: LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap { label in LineLogHandler(component: label, format: format, level: level) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [("ts", Self.timestamp()), ("level", event.level.rawValue), ("component", component),
                                          ("msg", event.message.description)]
        if let error = event.error { fields.append(("error", "\(error)")) }
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) { fields.append((key, "\(value)")) }
        let text = format == .json ? Self.jsonLine(fields) : Self.logfmtLine(fields)
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    private static let millisecondTimestamp = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    static func timestamp() -> String {
        millisecondTimestamp.format(Date())
    }

    /// `key=value` pairs, values quoted when they need it.
    public static func logfmtLine(_ fields: [(String, String)]) -> String {
        fields.map { key, value in
            let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\\" || $0.isNewline }
            return needsQuotes ? "\(key)=\"\(escape(value))\"" : "\(key)=\(value)"
        }.joined(separator: " ")
    }

    /// One JSON object, fields in order.
    public static func jsonLine(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\"\(escape($0.0))\":\"\(escape($0.1))\"" }.joined(separator: ",") + "}"
    }

    /// JSON string escaping, which also suits logfmt's quoted values.
    static func escape(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20: result += String(format: "\\u%04x", scalar.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
