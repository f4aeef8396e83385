import Testing
import VIPModel
@testable import VIPSpeaker

/// Group membership is reference-counted: VIPs sharing their low 24 bits share one group.
@Suite struct SolicitedNodeGroupsTests {
    func ip(_ text: String) -> IPAddress { IPAddress(text)! }

    @Test func sharedGroupsAreCountedAndLeftWithTheLastVIP() {
        let a = ip("2001:db8::120"), b = ip("2001:db8::1:0:120"), c = ip("2001:db8::200")
        #expect(SolicitedNodeGroups.group(of: a) == MACAddress("33:33:ff:00:01:20"))
        #expect(SolicitedNodeGroups.group(of: a) == SolicitedNodeGroups.group(of: b))
        let none = SolicitedNodeGroups()
        let both = SolicitedNodeGroups([a, b, c, ip("192.0.2.1")])
        #expect(both.counts[SolicitedNodeGroups.group(of: a)] == 2)
        #expect(both.counts.count == 2, "IPv4 addresses need no group")
        #expect(both.changes(from: none).join.count == 2)
        // One of the two sharing VIPs goes: nothing to leave yet.
        let one = SolicitedNodeGroups([b, c])
        #expect(one.changes(from: both) == ([], []))
        // The last one goes: leave exactly its group.
        let last = SolicitedNodeGroups([c])
        #expect(last.changes(from: one) == ([], [SolicitedNodeGroups.group(of: b)]))
    }
}
