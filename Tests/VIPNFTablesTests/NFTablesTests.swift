import Foundation
import Testing
import VIPForwarding
import VIPLink
import VIPModel
import VIPNFTables

/// States built straight from rules: the planner has its own unit tests; here only the kernel side matters.
enum States {
    static func ip(_ text: String) -> IPAddress { IPAddress(text)! }
    static func key(_ name: String) -> ObjectKey { ObjectKey(.service, namespace: "default", name: name) }

    static func rule(_ name: String, vip: String, port: Int = 80, protocol: ServicePort.PortProtocol = .tcp,
                     backends: [String], backendPort: Int = 8080, masquerade: Bool = true) -> ServicePortRule {
        let address = ip(vip)
        return ServicePortRule(service: key(name), family: address.family, protocol: `protocol`, port: port, vips: [address],
                               backends: backends.map { Backend(address: ip($0), port: backendPort) }.sorted(),
                               masquerade: masquerade)
    }

    static func state(_ rules: [ServicePortRule], extraVIPs: [String] = [], emptyServices: [String] = []) -> ForwardingState {
        var counts: [ObjectKey: Int] = [:]
        for rule in rules { counts[rule.service, default: 0] += rule.backends.count }
        for name in emptyServices { counts[key(name)] = 0 }
        let vips = Set(rules.flatMap(\.vips) + extraVIPs.map(ip))
        return ForwardingState(rules: rules, vips: vips, usableCounts: counts)
    }

    /// web: IPv4 Cluster, two backends; api: IPv6 Local; dns: UDP on web's VIP.
    static let first = state([
        rule("web", vip: "198.51.100.10", backends: ["192.0.2.1", "192.0.2.2"]),
        rule("api", vip: "2001:db8:100::20", port: 443, backends: ["2001:db8::1"], backendPort: 8443, masquerade: false),
        rule("dns", vip: "198.51.100.10", port: 53, protocol: .udp, backends: ["192.0.2.3"], backendPort: 5353),
    ], extraVIPs: ["198.51.100.11"], emptyServices: ["idle"])
}

extension NFTablesNamespaceTests {
    @Suite struct NFTablesTests {
        /// The ruleset as nft lists it, with each element list on one line (nft wraps long ones).
        static func ruleset(_ namespace: TestNamespace) async throws -> String {
            let text = try await namespace.ruleset()
            return text.replacingOccurrences(of: #",\s*\n\s*"#, with: ", ", options: .regularExpression)
        }

        /// Lines and list items, sorted: equal for two rulesets with the same content in another order.
        static func items(_ ruleset: String) -> [Substring] {
            ruleset.split(separator: "\n").flatMap { $0.split(separator: ", ") }.sorted()
        }

        @Test func contextTalksToTheNamespaceItWasCreatedIn() async throws {
            try await TestNamespace.with(2) { namespaces in
                let (home, other) = (namespaces[0], namespaces[1])
                let context = try NetworkNamespace.run(home.name) { try NFTablesContext() }
                // Run from a thread inside the other namespace: the socket opened in nft_ctx_new decides.
                try NetworkNamespace.run(other.name) { try context.run("add table inet mvnftprobe") }
                #expect(try await home.ruleset().contains("table inet mvnftprobe"))
                #expect(try await other.ruleset().isEmpty)
            }
        }

        @Test func replacementProgramsTheWholeTable() async throws {
            try await TestNamespace.with { namespace in
                let ns = namespace[0]
                let context = try await ns.context()
                try context.run(States.first.replacement().script)
                let ruleset = try await Self.ruleset(ns)
                #expect(ruleset.contains("table inet metalvip"))
                for element in ["198.51.100.10 . tcp . 80 : goto lb2", "198.51.100.10 . udp . 53 : goto lb1",
                                "2001:db8:100::20 . tcp . 443 : goto lb1",
                                "198.51.100.10 . tcp . 80 . 0 : 192.0.2.1 . 8080", "198.51.100.10 . tcp . 80 . 1 : 192.0.2.2 . 8080",
                                "198.51.100.10 . udp . 53 . 0 : 192.0.2.3 . 5353", "2001:db8:100::20 . tcp . 443 . 0 : 2001:db8::1 . 8443",
                                "elements = { 198.51.100.10, 198.51.100.11 }"] {
                    #expect(ruleset.contains(element), "missing \(element)")
                }
                let masquerade4 = try await ns.exec("nft", "list", "set", "inet", "metalvip", "masquerade4")
                #expect(masquerade4.contains("198.51.100.10 . tcp . 80") && masquerade4.contains("198.51.100.10 . udp . 53"))
                let masquerade6 = try await ns.exec("nft", "list", "set", "inet", "metalvip", "masquerade6")
                #expect(!masquerade6.contains("elements"), "Local keeps the client's source: no masquerade")
                let balancer = try await ns.exec("nft", "list", "chain", "inet", "metalvip", "lb2")
                #expect(balancer.contains("numgen random mod 2 map @lb2-backends4"))
                #expect(balancer.contains("numgen random mod 2 map @lb2-backends6"))
                // Replacing again (a restarted speaker) works on an existing table and leaves one table.
                try context.run(States.first.replacement().script)
                #expect(try await ns.ruleset().components(separatedBy: "table inet metalvip").count == 2)
            }
        }

        @Test func updateChangesOnlyWhatChangedAndLeavesOtherTablesAlone() async throws {
            try await TestNamespace.with { namespace in
                let ns = namespace[0]
                try await ns.exec("nft", "add table inet usertable; add chain inet usertable input { type filter hook input priority 0; }; add rule inet usertable input tcp dport 22 accept")
                let userTable = try await ns.exec("nft", "list", "table", "inet", "usertable")
                let nftables = NFTables(context: try await ns.context())
                try await nftables.apply(States.first.replacement())
                let before = try await Self.ruleset(ns)

                // web loses a backend, dns goes away, a new service appears, one VIP is released.
                let second = States.state([
                    States.rule("web", vip: "198.51.100.10", backends: ["192.0.2.1"]),
                    States.first.rules.first { $0.service == States.key("api") }!,
                    States.rule("mail", vip: "198.51.100.12", port: 25, backends: ["192.0.2.9"], backendPort: 2525),
                ], emptyServices: ["idle"])
                let update = second.update(from: States.first)
                try await nftables.apply(update)
                let after = try await Self.ruleset(ns)
                #expect(after.contains("198.51.100.10 . tcp . 80 : goto lb1"))
                #expect(after.contains("198.51.100.12 . tcp . 25 : goto lb1"))
                #expect(after.contains("198.51.100.12 . tcp . 25 . 0 : 192.0.2.9 . 2525"))
                #expect(!after.contains("192.0.2.2 . 8080"))
                #expect(!after.contains("198.51.100.10 . udp . 53"))
                #expect(!after.contains("chain lb2") && !after.contains("lb2-backends"), "no service port has two backends any more")
                #expect(after.contains("elements = { 198.51.100.10, 198.51.100.12 }"))
                // The api service was not part of the update and is unchanged.
                #expect(!update.script.contains("2001:db8:100::20"))
                #expect(after.contains("2001:db8:100::20 . tcp . 443 . 0 : 2001:db8::1 . 8443"))
                #expect(try await ns.exec("nft", "list", "table", "inet", "usertable") == userTable)

                // Applying the state it came from brings back the first ruleset (listed perhaps in another order).
                try await nftables.apply(States.first.update(from: second))
                #expect(Self.items(try await Self.ruleset(ns)) == Self.items(before))

                try await nftables.apply(ForwardingState.removal())
                let removed = try await ns.ruleset()
                #expect(!removed.contains("metalvip"))
                #expect(try await ns.exec("nft", "list", "table", "inet", "usertable") == userTable)
                // Removal of an absent table is not an error (a speaker stopping twice).
                try await nftables.apply(ForwardingState.removal())
            }
        }

        @Test func refusedScriptThrowsNftsMessageAndKeepsThePreviousState() async throws {
            try await TestNamespace.with { namespace in
                let ns = namespace[0]
                let nftables = NFTables(context: try await ns.context())
                try await nftables.apply(States.first.replacement())
                let before = try await ns.ruleset()
                // The first line is valid; the second names a chain that does not exist: nothing may be committed.
                let bad = RulesetUpdate(script: "add element inet metalvip vips4 { 198.51.100.99 }\nadd rule inet metalvip no-such-chain accept\n",
                                        isEmpty: false, changedServices: 1, state: .empty)
                do {
                    try await nftables.apply(bad)
                    Issue.record("a script naming a missing chain was accepted")
                } catch let error as NFTablesError {
                    guard case .transactionFailed(let message, let head) = error else {
                        Issue.record("unexpected error \(error)")
                        return
                    }
                    #expect(message.contains("No such file or directory"), "nft's message: \(message)")
                        #expect(head.hasPrefix("add element inet metalvip vips4"))
                    #expect(error.description.contains("nothing changed"))
                }
                #expect(try await ns.ruleset() == before)
                // The context stays usable after a refused transaction.
                try await nftables.apply(ForwardingState.removal())
                #expect(!(try await ns.ruleset()).contains("metalvip"))
            }
        }

        @Test func countersAreReadPerService() async throws {
            try await TestNamespace.with { namespace in
                let ns = namespace[0]
                let nftables = NFTables(context: try await ns.context())
                #expect(try await nftables.counters().isEmpty, "nothing applied yet: no counters")
                try await nftables.apply(States.first.replacement())
                let counters = try await nftables.counters()
                #expect(Set(counters.keys) == [States.key("web"), States.key("api"), States.key("dns")], "idle has no port to count")
                #expect(counters[States.key("web")]?.packets == 0)
                // Traffic from the node itself passes the output count chain: one UDP datagram to dns's VIP port.
                // A veth pair inside the namespace takes what is routed to it; with forwarding off the far end drops it,
                // so the datagram is counted once, on its way out.
                try await ns.exec("ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1")
                try await ns.exec("ip", "link", "set", "d0", "up")
                try await ns.exec("ip", "link", "set", "d1", "up")
                try await ns.exec("ip", "route", "add", "198.51.100.0/24", "dev", "d0")
                try await ns.exec("ip", "route", "add", "192.0.2.0/24", "dev", "d0")
                try NetworkNamespace.run(ns.name) {
                    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
                    defer { close(fd) }
                    var address = sockaddr_in()
                    address.sin_family = sa_family_t(AF_INET)
                    address.sin_port = in_port_t(53).bigEndian
                    inet_pton(AF_INET, "198.51.100.10", &address.sin_addr)
                    let payload = [UInt8](repeating: 7, count: 20)
                    _ = withUnsafePointer(to: &address) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(fd, payload, payload.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                        }
                    }
                }
                let counted = try await nftables.counters()
                #expect(counted[States.key("dns")]?.packets == 1)
                #expect(counted[States.key("dns")]?.bytes == 48, "20 bytes of payload + 8 UDP + 20 IPv4")
                #expect(counted[States.key("web")]?.packets == 0)
            }
        }

        @Test func forwardingSysctlsAreReadAndEnabledPerNamespace() async throws {
            try await TestNamespace.with { namespace in
                let ns = namespace[0]
                try await ns.exec("sysctl", "-qw", "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0")
                let missing = try NetworkNamespace.run(ns.name) { ForwardingSysctls.missing() }
                #expect(missing == ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"])
                let changed = try NetworkNamespace.run(ns.name) { try ForwardingSysctls.enable() }
                #expect(changed == ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"])
                #expect(try await ns.exec("sysctl", "-n", "net.ipv4.ip_forward").trimmingCharacters(in: .whitespacesAndNewlines) == "1")
                #expect(try await ns.exec("sysctl", "-n", "net.ipv6.conf.all.forwarding").trimmingCharacters(in: .whitespacesAndNewlines) == "1")
                #expect(try NetworkNamespace.run(ns.name) { ForwardingSysctls.missing() }.isEmpty)
                #expect(try NetworkNamespace.run(ns.name) { try ForwardingSysctls.enable() }.isEmpty)
            }
        }
    }
}
