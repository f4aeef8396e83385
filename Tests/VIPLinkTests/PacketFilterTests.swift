import Testing
import VIPLink

@Suite struct PacketFilterTests {
    @Test func compilesAnARPRequestFilter() throws {
        let filter = try PacketFilter(expression: "arp and arp[6:2] = 1")
        #expect(filter.instructionCount > 2)
        #expect(filter.expression == "arp and arp[6:2] = 1")
    }

    @Test func emptyExpressionAcceptsEverything() throws {
        #expect(try PacketFilter(expression: "").instructionCount == 1)
    }

    @Test func rejectsGarbageWithPcapsMessage() {
        let error = #expect(throws: LinkError.self) { try PacketFilter(expression: "arp and and ((") }
        #expect(error?.operation == "pcap_compile")
        #expect(error?.errno == nil)
        #expect(error?.message.contains("syntax error") == true)
        #expect(error?.description.contains("arp and and ((") == true)
    }
}
