import Foundation
import Testing
import VIPModel

@Suite struct ValueCodingTests {
    /// Every JSON kind decodes to its own case, whatever order the decoder tries them in: a quoted number stays a
    /// string, an integer is not taken as a double, empty containers keep their kind.
    @Test func eachJSONKindDecodesToItsCase() throws {
        let json = #"{"s":"80","i":80,"neg":-7,"d":1.5,"b":true,"f":false,"n":null,"a":[1,"x",{"k":false}],"o":{},"e":[],"t":"true"}"#
        let value = try JSONDecoder().decode(Value.self, from: Data(json.utf8))
        #expect(value == .object([
            "s": .string("80"), "i": .int(80), "neg": .int(-7), "d": .double(1.5), "b": .bool(true), "f": .bool(false),
            "n": .null, "a": .array([.int(1), .string("x"), .object(["k": .bool(false)])]), "o": .object([:]),
            "e": .array([]), "t": .string("true"),
        ]))
    }
}
