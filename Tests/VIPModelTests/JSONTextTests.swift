import Foundation
import Testing
import VIPModel

@Suite struct JSONTextTests {
    static func codable(_ text: String) -> Value? { try? JSONDecoder().decode(Value.self, from: Data(text.utf8)) }
    static func parsed(_ text: String) -> Value? { try? JSONText.parse(Data(text.utf8)) }

    /// The parser reads what `Value`'s Codable path reads, case for case: integers stay integers (a whole
    /// number written `2.0` too), larger ones become doubles, escapes and surrogate pairs become their scalars.
    @Test(arguments: [
        #"{"s":"80","i":80,"neg":-7,"d":1.5,"b":true,"f":false,"n":null,"a":[1,"x",{"k":false}],"o":{},"e":[],"t":"true"}"#,
        "2.0", "1e3", "-0", "0.5", "-1.25E-3", "-9223372036854775808", "9223372036854775807", "9223372036854775808",
        "12345678901234567890", "1.5e300", #""a\u00e9\ud83d\ude00\n\t\"\\\/""#, #""héllo wörld""#, " [ 1 , { \"a\" : null } ] ",
        #"{"a":1,"a":2}"#,
    ])
    func readsWhatCodableReads(_ text: String) throws {
        let expected = try #require(Self.codable(text), "Codable rejects \(text)")
        #expect(try JSONText.parse(Data(text.utf8)) == expected)
    }

    /// Every stored document round-trips: what the record encoder writes, the parser reads back equal.
    @Test func roundTripsTheKubectlExport() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/kubectl-export.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        // The export as one JSON value: its lines as strings, nested in objects and arrays of every kind.
        let value = Value.object([
            "lines": .array(text.split(separator: "\n").map { .string(String($0)) }),
            "numbers": .array([.int(0), .int(-1), .int(.max), .int(.min), .double(0.25), .double(-1e-9)]),
            "nested": .object(["a": .array([.null, .bool(true), .object([:]), .array([])])]),
        ])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        #expect(try JSONText.parse(try encoder.encode(value)) == value)
    }

    /// The writer writes JSONEncoder's bytes (sorted keys, no escaped slashes), so a record written either way
    /// is the same record: keys in byte order, every control character, doubles in Swift's shortest form.
    @Test func writesWhatJSONEncoderWrites() throws {
        var control = ""
        for byte in 0..<0x20 { control.unicodeScalars.append(Unicode.Scalar(UInt8(byte))) }
        let keys = ["a10", "a9", "B", "a", "_x", "é", "Z1", "z", "a-b", "a.b", "A", "10", "9", "ab", "aB", ""]
        let value = Value.object([
            "keys": .object(Dictionary(uniqueKeysWithValues: keys.map { ($0, Value.int(1)) })),
            "text": .string(control + "\u{7f}\"\\/é😀\u{2028} plain"),
            "doubles": .array([1.5, 1e-9, 1e21, 1e300, 0.1, -0.0, 123456789.125, 5e-324, 2.5e15, 1e16, -3.75].map(Value.double)),
            "ints": .array([.int(0), .int(-1), .int(.max), .int(.min)]),
            "rest": .array([.null, .bool(true), .bool(false), .object([:]), .array([]), .string("")]),
        ])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let expected = try encoder.encode(value)
        #expect(String(decoding: JSONText.encode(value), as: UTF8.self) == String(decoding: expected, as: UTF8.self))
        // Read back as the Codable path reads it: a whole double (2.5e15, -0.0) comes back an integer either way.
        #expect(try JSONText.parse(JSONText.encode(value)) == JSONDecoder().decode(Value.self, from: expected))
    }

    /// Bad text is an error that says where and what, never a crash: every prefix of a document and a
    /// few classic mistakes.
    @Test func badTextIsAnErrorWithItsOffset() throws {
        let document = #"{"metadata":{"name":"web","labels":{"a":"\u00e9"}},"spec":{"ports":[{"port":80}],"x":-1.5e3}}"#
        for end in 0..<document.utf8.count {
            #expect(throws: JSONText.ParseError.self) { try JSONText.parse(Data(document.utf8.prefix(end))) }
        }
        #expect(throws: JSONText.ParseError(offset: 7, reason: "expected ',' or '}'")) { try JSONText.parse(Data(#"{"a":1 "b":2}"#.utf8)) }
        #expect(throws: JSONText.ParseError(offset: 1, reason: "expected a quoted key")) { try JSONText.parse(Data("{a:1}".utf8)) }
        #expect(throws: JSONText.ParseError(offset: 3, reason: "unexpected text after the document")) { try JSONText.parse(Data("{} x".utf8)) }
        #expect(throws: JSONText.ParseError(offset: 1, reason: "expected a digit")) { try JSONText.parse(Data("-x".utf8)) }
        #expect(throws: JSONText.ParseError(offset: 2, reason: "expected a digit")) { try JSONText.parse(Data("1.".utf8)) }
        #expect(throws: JSONText.ParseError(offset: 7, reason: "unpaired surrogate")) { try JSONText.parse(Data(#""\ud83dx""#.utf8)) }
        #expect(throws: JSONText.ParseError(offset: 2, reason: "control character in a string")) { try JSONText.parse(Data("\"a\u{1}\"".utf8)) }
        #expect(throws: JSONText.ParseError(offset: 0, reason: "unexpected character")) { try JSONText.parse(Data("tru".utf8)) }
        #expect(Self.parsed("01") == nil && Self.parsed("[1,]") == nil && Self.parsed("") == nil)
    }

    /// Nesting is bounded, so hostile input cannot exhaust the stack.
    @Test func deepNestingIsRefused() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONText.ParseError(offset: JSONText.maxDepth, reason: "nested deeper than \(JSONText.maxDepth)")) {
            try JSONText.parse(Data(deep.utf8))
        }
        let allowed = String(repeating: "[", count: JSONText.maxDepth) + String(repeating: "]", count: JSONText.maxDepth)
        #expect(Self.parsed(allowed) != nil)
    }
}
