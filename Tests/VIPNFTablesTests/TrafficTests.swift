import Foundation
import Testing
import VIPForwarding
import VIPLink
import VIPModel
import VIPNFTables

extension NFTablesNamespaceTests {
    /// Real packets between two namespaces joined by a veth pair: the client routes the VIP to the node,
    /// which has a default route back to the client: exactly the loop a VIP packet would take if the node
    /// routed it instead of translating or rejecting it.
    @Suite struct TrafficTests {
        struct Addresses: Sendable, CustomStringConvertible {
            var vip: String
            var client: String
            var node: String
            var prefix: Int
            var description: String { vip.contains(":") ? "IPv6" : "IPv4" }
        }

        static let families = [
            Addresses(vip: "198.51.100.10", client: "203.0.113.1", node: "203.0.113.2", prefix: 24),
            Addresses(vip: "2001:db8:100::10", client: "2001:db8:1::1", node: "2001:db8:1::2", prefix: 64),
        ]

        @Test(arguments: families)
        func vipPortsReachTheirBackendsAndOtherPortsAreRefusedAtOnce(_ addresses: Addresses) async throws {
            try await TestNamespace.with(2) { namespaces in
                let (client, node) = (namespaces[0], namespaces[1])
                let host = addresses.vip.contains(":") ? 128 : 32
                try await client.exec("ip", "link", "add", "c0", "type", "veth", "peer", "name", "n0", "netns", node.name)
                try await client.exec("ip", "addr", "add", "\(addresses.client)/\(addresses.prefix)", "dev", "c0", "nodad")
                try await node.exec("ip", "addr", "add", "\(addresses.node)/\(addresses.prefix)", "dev", "n0", "nodad")
                try await client.exec("ip", "link", "set", "c0", "up")
                try await node.exec("ip", "link", "set", "n0", "up")
                try await client.exec("ip", "route", "add", "\(addresses.vip)/\(host)", "via", addresses.node)
                try await node.exec("ip", "route", "add", "default", "via", addresses.client)
                _ = try NetworkNamespace.run(node.name) { try ForwardingSysctls.enable() }
                #expect(try NetworkNamespace.run(node.name) { ForwardingSysctls.missing() }.isEmpty)

                // Port 80 (Cluster) goes to a backend on the client's side of the LAN: forwarded and masqueraded.
                // Port 8000 (Local) goes to a backend on the node itself: the client's address is kept.
                let vip = IPAddress(addresses.vip)!
                let key = { (name: String) in ObjectKey(.service, namespace: "default", name: name) }
                let state = ForwardingState(rules: [
                    ServicePortRule(service: key("web"), family: vip.family, protocol: .tcp, port: 80, vips: [vip],
                                    backends: [Backend(address: IPAddress(addresses.client)!, port: 9090)], masquerade: true),
                    ServicePortRule(service: key("local"), family: vip.family, protocol: .tcp, port: 8000, vips: [vip],
                                    backends: [Backend(address: IPAddress(addresses.node)!, port: 8080)], masquerade: false),
                ], vips: [vip], usableCounts: [key("web"): 1, key("local"): 1, key("empty"): 0])
                let nftables = NFTables(context: try await node.context())
                try await nftables.apply(state.replacement())

                let remoteBackend = try NetworkNamespace.run(client.name) { try TCPProbe.Listener(addresses.client, 9090) }
                let localBackend = try NetworkNamespace.run(node.name) { try TCPProbe.Listener(addresses.node, 8080) }

                let web = try NetworkNamespace.run(client.name) { try TCPProbe.Client(to: addresses.vip, 80) }
                #expect(web.outcome == .connected)
                #expect(try remoteBackend.serveOne(reply: "remote\n") == addresses.node, "Cluster: the backend sees the node (masquerade)")
                #expect(web.read() == "remote\n")

                let local = try NetworkNamespace.run(client.name) { try TCPProbe.Client(to: addresses.vip, 8000) }
                #expect(local.outcome == .connected)
                #expect(try localBackend.serveOne(reply: "local\n") == addresses.client, "Local: the backend sees the client")
                #expect(local.read() == "local\n")

                // No service on port 81: a reset at once, not a timeout and not a packet routed back to the client.
                let unused = try NetworkNamespace.run(client.name) { try TCPProbe.Client(to: addresses.vip, 81) }
                #expect(unused.outcome == .refused)
                #expect(unused.elapsed < .milliseconds(500))

                // A client on the node itself goes through the output hook: translated the same way, and refused the same way.
                let fromNode = try NetworkNamespace.run(node.name) { try TCPProbe.Client(to: addresses.vip, 80) }
                #expect(fromNode.outcome == .connected)
                #expect(try remoteBackend.serveOne(reply: "remote\n") == addresses.node)
                #expect(fromNode.read() == "remote\n")
                let unusedFromNode = try NetworkNamespace.run(node.name) { try TCPProbe.Client(to: addresses.vip, 81) }
                #expect(unusedFromNode.outcome == .refused)
                #expect(unusedFromNode.elapsed < .milliseconds(500))

                // Both directions are counted: at least SYN, SYN-ACK, ACK and the backend's reply.
                let counters = try await nftables.counters()
                #expect((counters[key("web")]?.packets ?? 0) >= 4)
                #expect((counters[key("local")]?.packets ?? 0) >= 4)

                // The service loses its only backend: its port is refused the same way.
                let emptied = ForwardingState(rules: [state.rules.first { $0.service == key("local") }!],
                                              vips: [vip], usableCounts: [key("web"): 0, key("local"): 1, key("empty"): 0])
                try await nftables.apply(emptied.update(from: state))
                let gone = try NetworkNamespace.run(client.name) { try TCPProbe.Client(to: addresses.vip, 80) }
                #expect(gone.outcome == .refused)
                #expect(gone.elapsed < .milliseconds(500))
                #expect(try await nftables.counters()[key("web")] == nil, "a port with no endpoint is not counted")
            }
        }
    }
}
