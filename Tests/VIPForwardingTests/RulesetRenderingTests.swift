import Testing
@testable import VIPForwarding
import VIPModel

@Suite struct RulesetRenderingTests {
    typealias F = Fixture

    /// One Cluster service (IPv4, two endpoints) and one Local service (IPv6, one endpoint on this node).
    static func smallState() -> ForwardingState {
        let web = F.service("web")
        let api = F.service("api", ports: [ServicePort(name: "grpc", port: 443)], policy: .local)
        let slices = [
            F.slice("web", [F.endpoint("192.0.2.1", node: "node-a"), F.endpoint("192.0.2.2", node: "node-b")]),
            F.slice("api", [F.endpoint("2001:db8::1", node: "node-a"), F.endpoint("2001:db8::2", node: "node-b")],
                    ports: [EndpointSlice.Port(name: "grpc", port: 8443)]),
        ]
        return F.plan([web, api], vips: ["web": ["198.51.100.10"], "api": ["2001:db8:100::20"]], slices: slices)
    }

    static func lines(_ update: RulesetUpdate) -> [String] {
        update.script.split(separator: "\n").map(String.init)
    }

    /// The whole text for the small case, checked once by hand and loaded with `nft -f` in a namespace.
    @Test func replacementTextForASmallCase() {
        let expected = """
        add table inet metalvip
        delete table inet metalvip
        table inet metalvip {
        \tset vips4 {
        \t\ttype ipv4_addr
        \t\telements = { 198.51.100.10 }
        \t}
        \tmap services4 {
        \t\ttype ipv4_addr . inet_proto . inet_service : verdict
        \t\telements = { 198.51.100.10 . tcp . 80 : goto lb2 }
        \t}
        \tset masquerade4 {
        \t\ttype ipv4_addr . inet_proto . inet_service
        \t\telements = { 198.51.100.10 . tcp . 80 }
        \t}
        \tset stats4 {
        \t\ttype ipv4_addr . inet_proto . inet_service
        \t\tcounter
        \t\telements = { 198.51.100.10 . tcp . 80 }
        \t}
        \tset vips6 {
        \t\ttype ipv6_addr
        \t\telements = { 2001:db8:100::20 }
        \t}
        \tmap services6 {
        \t\ttype ipv6_addr . inet_proto . inet_service : verdict
        \t\telements = { 2001:db8:100::20 . tcp . 443 : goto lb1 }
        \t}
        \tset masquerade6 {
        \t\ttype ipv6_addr . inet_proto . inet_service
        \t}
        \tset stats6 {
        \t\ttype ipv6_addr . inet_proto . inet_service
        \t\tcounter
        \t\telements = { 2001:db8:100::20 . tcp . 443 }
        \t}
        \tmap lb1-backends4 {
        \t\ttypeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport
        \t}
        \tmap lb1-backends6 {
        \t\ttypeof ip6 daddr . meta l4proto . th dport . numgen random mod 1 : ip6 daddr . th dport
        \t\telements = { 2001:db8:100::20 . tcp . 443 . 0 : 2001:db8::1 . 8443 }
        \t}
        \tchain lb1 {
        \t\tmeta nfproto ipv4 meta l4proto tcp dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 1 map @lb1-backends4
        \t\tmeta nfproto ipv4 meta l4proto udp dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 1 map @lb1-backends4
        \t\tmeta nfproto ipv4 meta l4proto sctp dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 1 map @lb1-backends4
        \t\tmeta nfproto ipv6 meta l4proto tcp dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 1 map @lb1-backends6
        \t\tmeta nfproto ipv6 meta l4proto udp dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 1 map @lb1-backends6
        \t\tmeta nfproto ipv6 meta l4proto sctp dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 1 map @lb1-backends6
        \t}
        \tmap lb2-backends4 {
        \t\ttypeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport
        \t\telements = { 198.51.100.10 . tcp . 80 . 0 : 192.0.2.1 . 8080, 198.51.100.10 . tcp . 80 . 1 : 192.0.2.2 . 8080 }
        \t}
        \tmap lb2-backends6 {
        \t\ttypeof ip6 daddr . meta l4proto . th dport . numgen random mod 1 : ip6 daddr . th dport
        \t}
        \tchain lb2 {
        \t\tmeta nfproto ipv4 meta l4proto tcp dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @lb2-backends4
        \t\tmeta nfproto ipv4 meta l4proto udp dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @lb2-backends4
        \t\tmeta nfproto ipv4 meta l4proto sctp dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @lb2-backends4
        \t\tmeta nfproto ipv6 meta l4proto tcp dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 2 map @lb2-backends6
        \t\tmeta nfproto ipv6 meta l4proto udp dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 2 map @lb2-backends6
        \t\tmeta nfproto ipv6 meta l4proto sctp dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 2 map @lb2-backends6
        \t}
        \tchain nat-prerouting {
        \t\ttype nat hook prerouting priority dstnat; policy accept;
        \t\tip daddr . meta l4proto . th dport @masquerade4 meta mark set meta mark | 0x00004000
        \t\tip6 daddr . meta l4proto . th dport @masquerade6 meta mark set meta mark | 0x00004000
        \t\tip daddr . meta l4proto . th dport vmap @services4
        \t\tip6 daddr . meta l4proto . th dport vmap @services6
        \t}
        \tchain nat-output {
        \t\ttype nat hook output priority -100; policy accept;
        \t\tip daddr . meta l4proto . th dport @masquerade4 meta mark set meta mark | 0x00004000
        \t\tip6 daddr . meta l4proto . th dport @masquerade6 meta mark set meta mark | 0x00004000
        \t\tip daddr . meta l4proto . th dport vmap @services4
        \t\tip6 daddr . meta l4proto . th dport vmap @services6
        \t}
        \tchain nat-postrouting {
        \t\ttype nat hook postrouting priority srcnat; policy accept;
        \t\tmeta mark & 0x00004000 == 0x00000000 return
        \t\tmeta mark set meta mark ^ 0x00004000
        \t\tmasquerade
        \t}
        \tchain count-prerouting {
        \t\ttype filter hook prerouting priority mangle; policy accept;
        \t\tip daddr . meta l4proto . th dport @stats4
        \t\tip6 daddr . meta l4proto . th dport @stats6
        \t}
        \tchain count-output {
        \t\ttype filter hook output priority mangle; policy accept;
        \t\tip daddr . meta l4proto . th dport @stats4
        \t\tip6 daddr . meta l4proto . th dport @stats6
        \t}
        \tchain count-replies {
        \t\ttype filter hook postrouting priority srcnat + 10; policy accept;
        \t\tip saddr . meta l4proto . th sport @stats4
        \t\tip6 saddr . meta l4proto . th sport @stats6
        \t}
        \tchain reject-vip {
        \t\tmeta l4proto tcp reject with tcp reset
        \t\treject with icmpx type port-unreachable
        \t}
        \tchain filter-forward {
        \t\ttype filter hook forward priority filter; policy accept;
        \t\tip daddr @vips4 jump reject-vip
        \t\tip6 daddr @vips6 jump reject-vip
        \t}
        \tchain filter-output {
        \t\ttype filter hook output priority filter; policy accept;
        \t\tip daddr @vips4 jump reject-vip
        \t\tip6 daddr @vips6 jump reject-vip
        \t}
        }

        """
        #expect(Self.smallState().replacement().script == expected)
    }

    /// 50 services with two endpoints each; svc7's VIP is 198.51.100.8.
    static func fifty(change: (inout [EndpointSlice]) -> Void = { _ in }) -> ForwardingState {
        var slices = (0..<50).map { index in
            F.slice("svc\(index)", [F.endpoint("192.0.2.\(index + 1)"), F.endpoint("192.0.2.\(index + 101)")])
        }
        change(&slices)
        var vips: [String: [String]] = [:]
        for index in 0..<50 { vips["svc\(index)"] = ["198.51.100.\(index + 1)"] }
        return F.plan((0..<50).map { F.service("svc\($0)") }, vips: vips, slices: slices)
    }

    @Test func oneEndpointChangeRewritesOneMapSlotOnly() {
        let before = Self.fifty()
        let after = Self.fifty { $0[7].endpoints[1].address = F.ip("203.0.113.7") }
        let update = after.update(from: before)
        #expect(Self.lines(update) == [
            "delete element inet metalvip lb2-backends4 { 198.51.100.8 . tcp . 80 . 1 }",
            "add element inet metalvip lb2-backends4 { 198.51.100.8 . tcp . 80 . 1 : 203.0.113.7 . 8080 }",
        ])
        #expect(update.changedServices == 1)
        #expect(!update.isEmpty)
        #expect(after.update(from: after).isEmpty)
        #expect(after.update(from: after).script.isEmpty)
    }

    @Test func aScaleDownRepointsTheKeyToTheSmallerBalancer() {
        let before = Self.fifty()
        let after = Self.fifty { $0[7].endpoints.removeLast() }
        let key = "198.51.100.8 . tcp . 80"
        #expect(Self.lines(after.update(from: before)) == ForwardingState.balancerCommands(1) + [
            "delete element inet metalvip lb2-backends4 { \(key) . 0, \(key) . 1 }",
            "delete element inet metalvip services4 { \(key) }",
            "add element inet metalvip lb1-backends4 { \(key) . 0 : 192.0.2.8 . 8080 }",
            "add element inet metalvip services4 { \(key) : goto lb1 }",
        ])
        // Back to two: lb1 has no user left and goes with its maps, after the elements that pointed at it.
        #expect(Self.lines(before.update(from: after)) == [
            "delete element inet metalvip lb1-backends4 { \(key) . 0 }",
            "delete element inet metalvip services4 { \(key) }",
            "add element inet metalvip lb2-backends4 { \(key) . 0 : 192.0.2.8 . 8080, \(key) . 1 : 192.0.2.108 . 8080 }",
            "add element inet metalvip services4 { \(key) : goto lb2 }",
            "delete chain inet metalvip lb1",
            "delete map inet metalvip lb1-backends4",
            "delete map inet metalvip lb1-backends6",
        ])
    }

    @Test func removedServicesMapElementsGoBeforeTheChainsAndMapsTheyName() {
        let state = Self.smallState()
        let without = F.plan([F.service("api", ports: [ServicePort(name: "grpc", port: 443)], policy: .local)],
                             vips: ["api": ["2001:db8:100::20"]],
                             slices: [F.slice("api", [F.endpoint("2001:db8::1", node: "node-a")],
                                              ports: [EndpointSlice.Port(name: "grpc", port: 8443)])])
        let key = "198.51.100.10 . tcp . 80"
        #expect(Self.lines(without.update(from: state)) == [
            "delete element inet metalvip lb2-backends4 { \(key) . 0, \(key) . 1 }",
            "delete element inet metalvip masquerade4 { \(key) }",
            "delete element inet metalvip services4 { \(key) }",
            "delete element inet metalvip stats4 { \(key) }",
            "delete chain inet metalvip lb2",
            "delete map inet metalvip lb2-backends4",
            "delete map inet metalvip lb2-backends6",
            "delete element inet metalvip vips4 { 198.51.100.10 }",
        ])
        // And back: the balancer chain and its maps exist before the elements that name them.
        #expect(Self.lines(state.update(from: without)) == ForwardingState.balancerCommands(2) + [
            "add element inet metalvip lb2-backends4 { \(key) . 0 : 192.0.2.1 . 8080, \(key) . 1 : 192.0.2.2 . 8080 }",
            "add element inet metalvip masquerade4 { \(key) }",
            "add element inet metalvip services4 { \(key) : goto lb2 }",
            "add element inet metalvip stats4 { \(key) }",
            "add element inet metalvip vips4 { 198.51.100.10 }",
        ])
    }

    @Test func aPortLosingItsLastEndpointLeavesTheMapsButKeepsItsVIP() {
        let state = Self.smallState()
        let slices = [F.slice("web", [F.endpoint("192.0.2.1", ready: false)]),
                      F.slice("api", [F.endpoint("2001:db8::1", node: "node-a")], ports: [EndpointSlice.Port(name: "grpc", port: 8443)])]
        let emptied = F.plan([F.service("web"), F.service("api", ports: [ServicePort(name: "grpc", port: 443)], policy: .local)],
                             vips: ["web": ["198.51.100.10"], "api": ["2001:db8:100::20"]], slices: slices)
        let lines = Self.lines(emptied.update(from: state))
        #expect(lines.contains("delete element inet metalvip services4 { 198.51.100.10 . tcp . 80 }"))
        #expect(lines.contains("delete element inet metalvip lb2-backends4 { 198.51.100.10 . tcp . 80 . 0, 198.51.100.10 . tcp . 80 . 1 }"))
        #expect(!lines.contains { $0.contains("vips4") }, "the VIP stays, so its traffic is rejected")
        #expect(lines.contains("delete element inet metalvip stats4 { 198.51.100.10 . tcp . 80 }"))
        #expect(!lines.contains { $0.hasPrefix("add") })
    }

    @Test func aKeyMovingToAnotherServiceIsDeletedThenAdded() {
        let slices = [F.slice("a", [F.endpoint("192.0.2.1")]), F.slice("b", [F.endpoint("192.0.2.2")])]
        let withA = F.plan([F.service("a"), F.service("b")], vips: ["a": ["198.51.100.10"], "b": ["198.51.100.11"]], slices: slices)
        let toB = F.plan([F.service("a"), F.service("b")], vips: ["a": ["198.51.100.12"], "b": ["198.51.100.10"]], slices: slices)
        let lines = Self.lines(toB.update(from: withA))
        // The key's count starts afresh for its new service.
        let delete = lines.firstIndex(of: "delete element inet metalvip stats4 { 198.51.100.10 . tcp . 80, 198.51.100.11 . tcp . 80 }")
        let add = lines.firstIndex(of: "add element inet metalvip stats4 { 198.51.100.10 . tcp . 80, 198.51.100.12 . tcp . 80 }")
        #expect(delete != nil && add != nil && delete! < add!, "\(lines)")
        #expect(lines.contains("add element inet metalvip lb1-backends4 { 198.51.100.10 . tcp . 80 . 0 : 192.0.2.2 . 8080, 198.51.100.12 . tcp . 80 . 0 : 192.0.2.1 . 8080 }"))
        #expect(!lines.contains { $0.contains("chain") || $0.contains("map inet") }, "only elements move: \(lines)")
    }

    @Test func replacementAndRemovalAreWholeTableTransactions() {
        let replacement = Self.lines(Self.smallState().replacement())
        #expect(Array(replacement.prefix(3)) == ["add table inet metalvip", "delete table inet metalvip", "table inet metalvip {"])
        #expect(Self.lines(ForwardingState.removal()) == ["add table inet metalvip", "delete table inet metalvip"])
        #expect(!Self.lines(ForwardingState.empty.replacement()).contains { $0.contains("elements") })
    }

    @Test func keysNameTheirServicesForCounting() {
        #expect(Self.smallState().keyServices == ["198.51.100.10 . tcp . 80": F.key("web"), "2001:db8:100::20 . tcp . 443": F.key("api")])
        #expect(ForwardingState.empty.keyServices.isEmpty)
    }
}
