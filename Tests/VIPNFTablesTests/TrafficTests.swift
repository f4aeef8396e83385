import Foundation
import Testing
import VIPForwarding
import VIPLink
import VIPModel
import VIPNFTables

extension NFTablesNamespaceTests {
    /// Real packets between two namespaces joined by a veth pair: the client (203.0.113.1) routes the VIP
    /// 198.51.100.10 to the node (203.0.113.2), which has a default route back to the client: exactly the
    /// loop a VIP packet would take if the node routed it instead of translating or rejecting it.
    @Suite struct TrafficTests {
        static let vip = "198.51.100.10"
        static let client = "203.0.113.1"
        static let node = "203.0.113.2"

        @Test func vipPortsReachTheirBackendsAndOtherPortsAreRefusedAtOnce() async throws {
            try await TestNamespace.with(2) { namespaces in
                let (client, node) = (namespaces[0], namespaces[1])
                try await client.exec("ip", "link", "add", "c0", "type", "veth", "peer", "name", "n0", "netns", node.name)
                try await client.exec("ip", "addr", "add", "\(Self.client)/24", "dev", "c0")
                try await node.exec("ip", "addr", "add", "\(Self.node)/24", "dev", "n0")
                try await client.exec("ip", "link", "set", "c0", "up")
                try await node.exec("ip", "link", "set", "n0", "up")
                try await client.exec("ip", "route", "add", "\(Self.vip)/32", "via", Self.node)
                try await node.exec("ip", "route", "add", "default", "via", Self.client)
                let changed = try NetworkNamespace.run(node.name) { try ForwardingSysctls.enable() }
                #expect(changed.contains("net.ipv4.ip_forward"))

                // Port 80 (Cluster) goes to a backend on the client's side of the LAN: forwarded and masqueraded.
                // Port 8000 (Local) goes to a backend on the node itself: the client's address is kept.
                let vip = IPAddress(Self.vip)!
                let key = { (name: String) in ObjectKey(.service, namespace: "default", name: name) }
                let state = ForwardingState(rules: [
                    ServicePortRule(service: key("web"), family: .ipv4, protocol: .tcp, port: 80, vips: [vip],
                                    backends: [Backend(address: IPAddress(Self.client)!, port: 9090)], masquerade: true),
                    ServicePortRule(service: key("local"), family: .ipv4, protocol: .tcp, port: 8000, vips: [vip],
                                    backends: [Backend(address: IPAddress(Self.node)!, port: 8080)], masquerade: false),
                ], vips: [vip], usableCounts: [key("web"): 1, key("local"): 1, key("empty"): 0])
                let nftables = NFTables(context: try await node.context())
                try await nftables.apply(state.replacement())

                let remoteBackend = try NetworkNamespace.run(client.name) { try TCPProbe.Listener(Self.client, 9090) }
                let localBackend = try NetworkNamespace.run(node.name) { try TCPProbe.Listener(Self.node, 8080) }

                let web = try NetworkNamespace.run(client.name) { try TCPProbe.Client(to: Self.vip, 80) }
                #expect(web.outcome == .connected)
                #expect(try remoteBackend.serveOne(reply: "remote\n") == Self.node, "Cluster: the backend sees the node (masquerade)")
                #expect(web.read() == "remote\n")

                let local = try NetworkNamespace.run(client.name) { try TCPProbe.Client(to: Self.vip, 8000) }
                #expect(local.outcome == .connected)
                #expect(try localBackend.serveOne(reply: "local\n") == Self.client, "Local: the backend sees the client")
                #expect(local.read() == "local\n")

                // No service on port 81: a reset at once, not a timeout and not a packet routed back to the client.
                let unused = try NetworkNamespace.run(client.name) { try TCPProbe.Client(to: Self.vip, 81) }
                #expect(unused.outcome == .refused)
                #expect(unused.elapsed < .milliseconds(500))

                // The service loses its only backend: its port is refused the same way.
                let emptied = ForwardingState(rules: [state.rules.values.first { $0.service == key("local") }!],
                                              vips: [vip], usableCounts: [key("web"): 0, key("local"): 1, key("empty"): 0])
                try await nftables.apply(emptied.update(from: state))
                let gone = try NetworkNamespace.run(client.name) { try TCPProbe.Client(to: Self.vip, 80) }
                #expect(gone.outcome == .refused)
                #expect(gone.elapsed < .milliseconds(500))

                let counters = try await nftables.counters()
                #expect((counters[key("web")]?.packets ?? 0) >= 4, "SYN, ACK and the replies of the first connection")
                #expect((counters[key("local")]?.packets ?? 0) >= 2)
            }
        }
    }
}
