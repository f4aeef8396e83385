import Foundation
import Testing
import VIPModel

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("0.0.0.0", "0.0.0.0"),
        ("192.0.2.1", "192.0.2.1"),
        ("255.255.255.255", "255.255.255.255"),
        // RFC 5952 canonical forms
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),       // leftmost of two equal runs
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),    // single zero group is not compressed
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),             // longest run wins
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("0:0:0:0:0:0:0:0", "::"),
        ("fe80::0001:0000", "fe80::1:0"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
        ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ("0:0:0:0:0:ffff:c000:0201", "::ffff:192.0.2.1"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
        ("::1.2.3.4", "::102:304"),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ])
    func parsesAndFormatsCanonically(input: String, canonical: String) throws {
        let address = try #require(IPAddress(input))
        #expect(address.description == canonical)
        #expect(IPAddress(canonical) == address)
    }

    @Test func valuesAndFamilies() throws {
        let v4 = try #require(IPAddress("192.0.2.1"))
        #expect(v4.family == .ipv4)
        #expect(v4.value == 0xC000_0201)
        let v6 = try #require(IPAddress("2001:db8::1"))
        #expect(v6.family == .ipv6)
        #expect(v6.value == (0x2001_0db8 as UInt128) << 96 | 1)
        #expect(IPAddress(family: .ipv6, value: .max).description == "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
    }

    @Test(arguments: [
        "", " ", "1", "1.2.3", "1.2.3.4.5", "1.2.3.", ".1.2.3", "1..2.3", "010.0.0.1", "1.2.3.04", "256.0.0.1",
        "1.2.3.300", "1.2.3.4294967297", "99999999999999999999.1.1.1", "1.2.3.-1", "1.2.3.+1", "1.2.3.4 ", " 1.2.3.4",
        "a.b.c.d", "1.2.3.4/24", "0x1.2.3.4", "١.٢.٣.٤",
        ":", ":::", "1:::2", "1::2::3", "::1::", ":1::2", "1::2:", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "12345::", "::g", "fe80::1%eth0", "fe80::1%", "[::1]", "[::1]:80",
        "::1.2.3", "::1.2.3.4.5", "::256.1.1.1", "1.2.3.4::", "1.2.3.4::1", "::1.2.3.4:5", "1:2:3:4:5:6:7:1.2.3.4",
        "::ffff:01.2.3.4", "2001:db8:::1", String(repeating: "1", count: 10_000), String(repeating: ":", count: 100),
        "2001:db8::1\u{0}", "🙂", "::ffff:1.2.3.4%",
    ])
    func rejectsMalformed(input: String) {
        #expect(IPAddress(input) == nil)
    }

    @Test func parseErrorsNameTheFault() {
        #expect(throws: AddressParseError.invalidAddress("192.0.2.300", .octetTooLarge("300"))) {
            try IPAddress.parse("192.0.2.300")
        }
        #expect(
            (try? IPAddress.parse("192.0.2.300")) == nil
        )
        do {
            _ = try IPAddress.parse("192.0.2.300")
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "invalid address \"192.0.2.300\": octet 300 is greater than 255")
        }
        do {
            _ = try IPAddress.parse("1::2::3")
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "invalid address \"1::2::3\": \"::\" may appear only once")
        }
        do {
            _ = try IPAddress.parse("fe80::1%eth0")
            Issue.record("expected an error")
        } catch {
            #expect(error.problem == .zoneIdentifier)
        }
    }

    @Test func orderingIsFamilyThenValue() throws {
        let list = ["2001:db8::1", "10.0.0.2", "::", "10.0.0.1", "255.255.255.255"].compactMap(IPAddress.init)
        #expect(list.sorted().map(\.description) == ["10.0.0.1", "10.0.0.2", "255.255.255.255", "::", "2001:db8::1"])
        #expect(IPFamily.ipv4 < IPFamily.ipv6)
        #expect(!(IPFamily.ipv6 < IPFamily.ipv4))
    }

    @Test func codableAsString() throws {
        let address = try #require(IPAddress("2001:db8::ff00:42:8329"))
        let data = try JSONEncoder().encode([address])
        #expect(String(decoding: data, as: UTF8.self) == "[\"2001:db8::ff00:42:8329\"]")
        #expect(try JSONDecoder().decode([IPAddress].self, from: data) == [address])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([IPAddress].self, from: Data("[\"1.2.3.256\"]".utf8))
        }
    }

    @Test func fuzzedInputNeverTraps() {
        // Deterministic random strings over the characters that matter to the parser.
        let alphabet = Array("0123456789abcdefABCDEFg:.%[]/- ")
        var state: UInt64 = 0x1234_5678
        var parsed = 0
        for _ in 0..<20_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let length = Int(state >> 59) + 1
            var text = ""
            for _ in 0..<length {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                text.append(alphabet[Int(state >> 33) % alphabet.count])
            }
            if let address = IPAddress(text) {
                parsed += 1
                #expect(IPAddress(address.description) == address)
            }
        }
        #expect(parsed > 0)
    }
}
