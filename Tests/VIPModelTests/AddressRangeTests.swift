import Testing
import VIPModel

@Suite struct AddressRangeTests {
    @Test(arguments: [
        ("192.0.2.0/24", "192.0.2.0", "192.0.2.255", "192.0.2.0/24"),
        ("192.0.2.77/24", "192.0.2.0", "192.0.2.255", "192.0.2.0/24"),   // host bits masked off
        ("10.0.0.0/8", "10.0.0.0", "10.255.255.255", "10.0.0.0/8"),
        ("0.0.0.0/0", "0.0.0.0", "255.255.255.255", "0.0.0.0/0"),
        ("192.0.2.7/32", "192.0.2.7", "192.0.2.7", "192.0.2.7"),
        ("192.0.2.7", "192.0.2.7", "192.0.2.7", "192.0.2.7"),
        ("192.0.2.10-192.0.2.20", "192.0.2.10", "192.0.2.20", "192.0.2.10-192.0.2.20"),
        ("192.0.2.10 - 192.0.2.20", "192.0.2.10", "192.0.2.20", "192.0.2.10-192.0.2.20"),
        ("192.0.2.0-192.0.2.255", "192.0.2.0", "192.0.2.255", "192.0.2.0/24"),
        ("192.0.2.5-192.0.2.5", "192.0.2.5", "192.0.2.5", "192.0.2.5"),
        ("2001:db8::/64", "2001:db8::", "2001:db8::ffff:ffff:ffff:ffff", "2001:db8::/64"),
        ("2001:db8::1:2/112", "2001:db8::1:0", "2001:db8::1:ffff", "2001:db8::1:0/112"),
        ("::/0", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0"),
        ("2001:db8::1/128", "2001:db8::1", "2001:db8::1", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1", "2001:db8::1", "2001:db8::1"),
        ("2001:db8::10-2001:db8::20", "2001:db8::10", "2001:db8::20", "2001:db8::10-2001:db8::20"),
        ("2001:db8::10 -2001:db8::20", "2001:db8::10", "2001:db8::20", "2001:db8::10-2001:db8::20"),
    ])
    func parses(input: String, first: String, last: String, description: String) throws {
        let range = try AddressRange.parse(input)
        #expect(range.first == IPAddress(first))
        #expect(range.last == IPAddress(last))
        #expect(range.description == description)
        #expect(try AddressRange.parse(range.description) == range)
    }

    @Test(arguments: [
        ("192.0.2.0/33", "invalid CIDR \"192.0.2.0/33\": prefix length 33 is out of range 0-32"),
        ("2001:db8::/129", "invalid CIDR \"2001:db8::/129\": prefix length 129 is out of range 0-128"),
        ("192.0.2.300", "invalid address \"192.0.2.300\": octet 300 is greater than 255"),
        ("192.0.2.20-192.0.2.10", "invalid range \"192.0.2.20-192.0.2.10\": start 192.0.2.20 is after end 192.0.2.10"),
        ("192.0.2.1-2001:db8::1", "invalid range \"192.0.2.1-2001:db8::1\": start and end are of different families"),
        ("192.0.2.1-192.0.2.300", "invalid range \"192.0.2.1-192.0.2.300\": end address: octet 300 is greater than 255"),
        ("-192.0.2.1", "invalid range \"-192.0.2.1\": the start address is missing"),
        ("192.0.2.1-", "invalid range \"192.0.2.1-\": the end address is missing"),
        ("192.0.2.0/", "invalid CIDR \"192.0.2.0/\": the prefix length after '/' is missing"),
        ("192.0.2.0/2a", "invalid CIDR \"192.0.2.0/2a\": prefix length \"2a\" is not a decimal number"),
        ("192.0.2.0/-1", "invalid range \"192.0.2.0/-1\": start address: octet \"0/\" is not a decimal number"),
        ("192.0.2.0/99999999999999999999999", "invalid CIDR \"192.0.2.0/99999999999999999999999\": prefix length 99999999999999999999999 is out of range 0-32"),
        ("garbage", "invalid address \"garbage\": expected 4 dot-separated octets, found 1"),
        ("", "invalid address \"\": it is empty"),
        ("hello/24", "invalid CIDR \"hello/24\": expected 4 dot-separated octets, found 1"),
        ("fe80::1%eth0/64", "invalid CIDR \"fe80::1%eth0/64\": zone identifiers (\"%...\") are not allowed"),
    ])
    func rejectsWithExactMessage(input: String, message: String) {
        do {
            let range = try AddressRange.parse(input)
            Issue.record("parsed \(input) as \(range)")
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func initValidates() throws {
        let a = try #require(IPAddress("192.0.2.9")), b = try #require(IPAddress("192.0.2.1"))
        #expect(throws: AddressParseError.self) { try AddressRange(first: a, last: b) }
        #expect(throws: AddressParseError.self) { try AddressRange(first: a, last: #require(IPAddress("::1"))) }
        let range = try AddressRange(first: b, last: a)
        #expect(range.count == 9)
        #expect(range.family == .ipv4)
    }

    @Test func counts() throws {
        #expect(try AddressRange.parse("::/0").count == AddressCount.allIPv6)
        #expect(try AddressRange.parse("::/0").count.description == "340282366920938463463374607431768211456")
        #expect(try AddressRange.parse("2001:db8::/64").count.description == "18446744073709551616")
        #expect(try AddressRange.parse("10.0.0.0/8").count == 16_777_216)
        #expect(try AddressRange.parse("0.0.0.0/0").count == 4_294_967_296)
        #expect(try AddressRange.parse("192.0.2.1").count == 1)
        #expect(try AddressRange.parse("192.0.2.10-192.0.2.20").count == 11)
    }

    @Test func containsAndOverlaps() throws {
        let net = try AddressRange.parse("192.0.2.0/24")
        #expect(net.contains(try #require(IPAddress("192.0.2.0"))))
        #expect(net.contains(try #require(IPAddress("192.0.2.255"))))
        #expect(!net.contains(try #require(IPAddress("192.0.3.0"))))
        #expect(!net.contains(try #require(IPAddress("::ffff:192.0.2.1"))))
        #expect(net.overlaps(try AddressRange.parse("192.0.2.255-192.0.3.4")))
        #expect(!net.overlaps(try AddressRange.parse("192.0.3.0-192.0.3.4")))
        #expect(!net.overlaps(try AddressRange.parse("::/0")))
        #expect(try AddressRange.parse("::/0").overlaps(try AddressRange.parse("2001:db8::5")))
    }

    @Test func prefixLength() throws {
        #expect(try AddressRange.parse("192.0.2.0/24").prefixLength == 24)
        #expect(try AddressRange.parse("::/0").prefixLength == 0)
        #expect(try AddressRange.parse("192.0.2.1-192.0.2.2").prefixLength == nil)
        #expect(try AddressRange.parse("192.0.2.2-192.0.2.3").prefixLength == 31)
    }
}
