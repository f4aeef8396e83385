import Testing
import VIPLease
import VIPModel
@testable import VIPSpeaker

/// Group membership is reference-counted (VIPs sharing their low 24 bits share one group), joined at once and
/// left only after a delay.
@Suite struct SolicitedNodeGroupsTests {
    func ip(_ text: String) -> IPAddress { IPAddress(text)! }

    /// Follows `wanted` at `seconds` with a one-second delay, returning the joins and leaves it made.
    func follow(_ membership: inout GroupMembership, _ wanted: SolicitedNodeGroups, at seconds: Double,
                failing: Set<MACAddress> = []) -> (join: [MACAddress], leave: [MACAddress]) {
        var joins: [MACAddress] = [], leaves: [MACAddress] = []
        membership.follow(wanted, now: MonotonicInstant(nanoseconds: Int64(seconds * 1e9)), leaveDelay: .seconds(1),
                          join: { joins.append($0); return !failing.contains($0) }, leave: { leaves.append($0) })
        return (joins, leaves)
    }

    @Test func sharedGroupsAreCountedAndLeftAfterTheLastVIPWentForTheDelay() {
        let a = ip("2001:db8::120"), b = ip("2001:db8::1:0:120"), c = ip("2001:db8::200")
        let ab = SolicitedNodeGroups.group(of: a), cGroup = SolicitedNodeGroups.group(of: c)
        #expect(ab == MACAddress("33:33:ff:00:01:20"))
        #expect(ab == SolicitedNodeGroups.group(of: b))
        let all = SolicitedNodeGroups([a, b, c, ip("192.0.2.1")])
        #expect(all.counts[ab] == 2)
        #expect(all.counts.count == 2, "IPv4 addresses need no group")

        var membership = GroupMembership()
        #expect(follow(&membership, all, at: 0) == ([ab, cGroup].sorted(), []))
        // One of the two sharing VIPs goes: its group is still wanted.
        #expect(follow(&membership, SolicitedNodeGroups([b, c]), at: 1) == ([], []))
        // The last one goes: the group stays joined for the delay, then is left.
        #expect(follow(&membership, SolicitedNodeGroups([c]), at: 2) == ([], []))
        #expect(membership.isLingering && membership.joined == [ab, cGroup])
        #expect(follow(&membership, SolicitedNodeGroups([c]), at: 2.9) == ([], []))
        #expect(follow(&membership, SolicitedNodeGroups([c]), at: 3) == ([], [ab]))
        #expect(!membership.isLingering && membership.joined == [cGroup])
    }

    /// What a lapse does: the table empties and refills within the delay, and no group is left or joined again.
    @Test func aGroupWantedAgainWithinTheDelayIsNeitherLeftNorJoinedAgain() {
        let c = ip("2001:db8::200"), group = SolicitedNodeGroups.group(of: c)
        var membership = GroupMembership()
        #expect(follow(&membership, SolicitedNodeGroups([c]), at: 0) == ([group], []))
        #expect(follow(&membership, SolicitedNodeGroups(), at: 10) == ([], []))
        #expect(follow(&membership, SolicitedNodeGroups([c]), at: 10.5) == ([], []))
        #expect(!membership.isLingering)
        // Its next departure starts a new delay.
        #expect(follow(&membership, SolicitedNodeGroups(), at: 11) == ([], []))
        #expect(follow(&membership, SolicitedNodeGroups(), at: 11.5) == ([], []))
        #expect(follow(&membership, SolicitedNodeGroups(), at: 12) == ([], [group]))
    }

    @Test func aFailedJoinIsRetried() {
        let c = ip("2001:db8::200"), group = SolicitedNodeGroups.group(of: c)
        var membership = GroupMembership()
        #expect(follow(&membership, SolicitedNodeGroups([c]), at: 0, failing: [group]) == ([group], []))
        #expect(membership.joined.isEmpty)
        #expect(follow(&membership, SolicitedNodeGroups([c]), at: 1) == ([group], []))
        #expect(membership.joined == [group])
    }
}
