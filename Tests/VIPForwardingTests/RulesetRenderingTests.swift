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

    /// The whole text for the small case, checked once by hand and by `nft -c -f` in a namespace.
    /// Hashes are FNV-1a of `default/web/IPv4/TCP/80`, `default/api/IPv6/TCP/443`, `default/web`, `default/api`.
    @Test func replacementTextForASmallCase() {
        let expected = """
        add table inet metalvip
        delete table inet metalvip
        table inet metalvip {
        \tcounter svc-default-api-7409e551 {
        \t}
        \tcounter svc-default-web-41d689bb {
        \t}
        \tset vips4 {
        \t\ttype ipv4_addr
        \t\telements = { 198.51.100.10 }
        \t}
        \tmap services4 {
        \t\ttype ipv4_addr . inet_proto . inet_service : verdict
        \t\telements = { 198.51.100.10 . tcp . 80 : goto svc4-default-web-tcp80-aebc3550 }
        \t}
        \tmap counters4 {
        \t\ttype ipv4_addr . inet_proto . inet_service : counter
        \t\telements = { 198.51.100.10 . tcp . 80 : "svc-default-web-41d689bb" }
        \t}
        \tset vips6 {
        \t\ttype ipv6_addr
        \t\telements = { 2001:db8:100::20 }
        \t}
        \tmap services6 {
        \t\ttype ipv6_addr . inet_proto . inet_service : verdict
        \t\telements = { 2001:db8:100::20 . tcp . 443 : goto svc6-default-api-tcp443-01459965 }
        \t}
        \tmap counters6 {
        \t\ttype ipv6_addr . inet_proto . inet_service : counter
        \t\telements = { 2001:db8:100::20 . tcp . 443 : "svc-default-api-7409e551" }
        \t}
        \tchain svc4-default-web-tcp80-aebc3550 {
        \t\tmeta mark set meta mark | 0x00004000 meta l4proto tcp dnat ip to numgen random mod 2 map { 0 : 192.0.2.1 . 8080, 1 : 192.0.2.2 . 8080 }
        \t}
        \tchain svc6-default-api-tcp443-01459965 {
        \t\tmeta l4proto tcp dnat ip6 to numgen random mod 1 map { 0 : 2001:db8::1 . 8443 }
        \t}
        \tchain nat-prerouting {
        \t\ttype nat hook prerouting priority dstnat; policy accept;
        \t\tip daddr . meta l4proto . th dport vmap @services4
        \t\tip6 daddr . meta l4proto . th dport vmap @services6
        \t}
        \tchain nat-output {
        \t\ttype nat hook output priority -100; policy accept;
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
        \t\tcounter name ip daddr . meta l4proto . th dport map @counters4
        \t\tcounter name ip6 daddr . meta l4proto . th dport map @counters6
        \t}
        \tchain count-output {
        \t\ttype filter hook output priority mangle; policy accept;
        \t\tcounter name ip daddr . meta l4proto . th dport map @counters4
        \t\tcounter name ip6 daddr . meta l4proto . th dport map @counters6
        \t}
        \tchain count-replies {
        \t\ttype filter hook postrouting priority srcnat + 10; policy accept;
        \t\tcounter name ip saddr . meta l4proto . th sport map @counters4
        \t\tcounter name ip6 saddr . meta l4proto . th sport map @counters6
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

    @Test func oneEndpointChangeRewritesOneChainOnly() {
        var slices = (0..<50).map { index in
            F.slice("svc\(index)", [F.endpoint("192.0.2.\(index + 1)"), F.endpoint("192.0.2.\(index + 101)")])
        }
        let services = (0..<50).map { F.service("svc\($0)") }
        var vips: [String: [String]] = [:]
        for index in 0..<50 { vips["svc\(index)"] = ["198.51.100.\(index + 1)"] }
        let before = F.plan(services, vips: vips, slices: slices)
        slices[7].endpoints.removeLast()
        let after = F.plan(services, vips: vips, slices: slices)
        let update = after.update(from: before)
        let chain = F.rule(after, "svc7")!.chain
        #expect(Self.lines(update) == [
            "flush chain inet metalvip \(chain)",
            "add rule inet metalvip \(chain) meta mark set meta mark | 0x00004000 meta l4proto tcp dnat ip to numgen random mod 1 map { 0 : 192.0.2.8 . 8080 }",
        ])
        #expect(update.changedServices == 1)
        #expect(!update.isEmpty)
        #expect(after.update(from: after).isEmpty)
        #expect(after.update(from: after).script.isEmpty)
    }

    @Test func removedServicesMapElementsGoBeforeTheirChainsAndCounters() {
        let state = Self.smallState()
        let without = F.plan([F.service("api", ports: [ServicePort(name: "grpc", port: 443)], policy: .local)],
                             vips: ["api": ["2001:db8:100::20"]],
                             slices: [F.slice("api", [F.endpoint("2001:db8::1", node: "node-a")],
                                              ports: [EndpointSlice.Port(name: "grpc", port: 8443)])])
        let web = F.rule(state, "web")!
        let counter = ForwardingState.counterName(of: F.key("web"))
        #expect(Self.lines(without.update(from: state)) == [
            "delete element inet metalvip services4 { 198.51.100.10 . tcp . 80 }",
            "delete element inet metalvip counters4 { 198.51.100.10 . tcp . 80 }",
            "delete chain inet metalvip \(web.chain)",
            "delete counter inet metalvip \(counter)",
            "delete element inet metalvip vips4 { 198.51.100.10 }",
        ])
        // And back: the counter and chain exist before the elements that point at them.
        #expect(Self.lines(state.update(from: without)) == [
            "add counter inet metalvip \(counter)",
            "add chain inet metalvip \(web.chain)",
            "add rule inet metalvip \(web.chain) \(state.body(of: web))",
            "add element inet metalvip services4 { 198.51.100.10 . tcp . 80 : goto \(web.chain) }",
            "add element inet metalvip counters4 { 198.51.100.10 . tcp . 80 : \"\(counter)\" }",
            "add element inet metalvip vips4 { 198.51.100.10 }",
        ])
    }

    @Test func aPortLosingItsLastEndpointLeavesTheMapButKeepsItsVIP() {
        let state = Self.smallState()
        let slices = [F.slice("web", [F.endpoint("192.0.2.1", ready: false)]),
                      F.slice("api", [F.endpoint("2001:db8::1", node: "node-a")], ports: [EndpointSlice.Port(name: "grpc", port: 8443)])]
        let emptied = F.plan([F.service("web"), F.service("api", ports: [ServicePort(name: "grpc", port: 443)], policy: .local)],
                             vips: ["web": ["198.51.100.10"], "api": ["2001:db8:100::20"]], slices: slices)
        let lines = Self.lines(emptied.update(from: state))
        #expect(lines.contains("delete element inet metalvip services4 { 198.51.100.10 . tcp . 80 }"))
        #expect(lines.contains("delete chain inet metalvip \(F.rule(state, "web")!.chain)"))
        #expect(!lines.contains { $0.contains("vips4") }, "the VIP stays, so its traffic is rejected")
        #expect(!lines.contains { $0.contains("delete counter") }, "the service is still there: its counter stays")
    }

    @Test func aKeyMovingToAnotherServiceIsDeletedThenAdded() {
        let slices = [F.slice("a", [F.endpoint("192.0.2.1")]), F.slice("b", [F.endpoint("192.0.2.2")])]
        let withA = F.plan([F.service("a"), F.service("b")], vips: ["a": ["198.51.100.10"], "b": ["198.51.100.11"]], slices: slices)
        let toB = F.plan([F.service("a"), F.service("b")], vips: ["a": ["198.51.100.12"], "b": ["198.51.100.10"]], slices: slices)
        let lines = Self.lines(toB.update(from: withA))
        let delete = lines.firstIndex(of: "delete element inet metalvip services4 { 198.51.100.10 . tcp . 80, 198.51.100.11 . tcp . 80 }")
        let add = lines.firstIndex { $0.hasPrefix("add element inet metalvip services4 { 198.51.100.10 . tcp . 80 : goto \(F.rule(toB, "b")!.chain)") }
        #expect(delete != nil && add != nil && delete! < add!, "\(lines)")
        #expect(!lines.contains { $0.contains("chain") }, "only the elements move: \(lines)")
    }

    @Test func replacementAndRemovalAreWholeTableTransactions() {
        let replacement = Self.lines(Self.smallState().replacement())
        #expect(Array(replacement.prefix(3)) == ["add table inet metalvip", "delete table inet metalvip", "table inet metalvip {"])
        #expect(Self.lines(ForwardingState.removal()) == ["add table inet metalvip", "delete table inet metalvip"])
        #expect(!Self.lines(ForwardingState.empty.replacement()).contains { $0.contains("elements") })
    }

    @Test func chainNamesAreStableValidAndShort() {
        let long = String(repeating: "a", count: 63)
        let key = ObjectKey(.service, namespace: long, name: long + ".x")
        let rule = ServicePortRule(service: key, family: .ipv6, protocol: .udp, port: 53, vips: [], backends: [], masquerade: true)
        #expect(rule.chain.count <= 64)
        #expect(rule.chain.hasPrefix("svc6-\(long.prefix(35))"))
        #expect(rule.chain.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") })
        let other = ServicePortRule(service: ObjectKey(.service, namespace: long, name: long + ".y"), family: .ipv6,
                                    protocol: .udp, port: 53, vips: [], backends: [], masquerade: true)
        #expect(other.chain != rule.chain, "same readable prefix, different hash")
        #expect(rule.chain == ServicePortRule(service: key, family: .ipv6, protocol: .udp, port: 53, vips: [], backends: [],
                                              masquerade: false).chain)
    }
}
