import Foundation
import Testing
import VIPLink
import VIPModel

extension NamespaceTests {
    @Suite struct LinkMonitorTests {
        /// Waits (bounded) until the monitor reports `name` in the wanted state; carrier comes up asynchronously.
        private func waitFor(_ monitor: LinkMonitor, _ name: String, up: Bool) async throws -> LinkInfo? {
            for _ in 0..<100 {
                if let link = monitor.link(named: name), link.isUp == up { return link }
                try await Task.sleep(for: .milliseconds(50))
            }
            return nil
        }

        @Test func snapshotMatchesIPAndFollowsDownAndUp() async throws {
            let net = try VethPair()
            defer { net.remove() }
            let monitor = try NetworkNamespace.run(net.b) { try LinkMonitor() }
            defer { monitor.stop() }
            let expected = try net.interface(VethPair.interfaceB, in: net.b)

            let link = try #require(try await waitFor(monitor, VethPair.interfaceB, up: true))
            #expect(link.index == expected.index)
            #expect(link.mac == expected.mac)
            #expect(link.mtu == 1500)
            #expect(Set(monitor.links().map(\.name)) == ["lo", VethPair.interfaceB])

            let downs = monitor.changes
            try IPCommand.run("-n", net.b, "link", "set", VethPair.interfaceB, "down")
            let down = await firstChange(downs, within: .seconds(5)) { $0.name == VethPair.interfaceB && !$0.isUp }
            #expect(down?.index == expected.index)
            #expect(monitor.link(named: VethPair.interfaceB)?.isUp == false)

            let ups = monitor.changes
            try IPCommand.run("-n", net.b, "link", "set", VethPair.interfaceB, "up")
            let up = await firstChange(ups, within: .seconds(5)) { $0.name == VethPair.interfaceB && $0.isUp }
            #expect(up?.mac == expected.mac)
        }

        @Test func peerGoingDownDropsCarrier() async throws {
            let net = try VethPair()
            defer { net.remove() }
            let monitor = try NetworkNamespace.run(net.b) { try LinkMonitor() }
            defer { monitor.stop() }
            #expect(try await waitFor(monitor, VethPair.interfaceB, up: true) != nil)

            let changes = monitor.changes
            // Admin state of b stays up; only the carrier goes (operstate LOWERLAYERDOWN).
            try IPCommand.run("-n", net.a, "link", "set", VethPair.interfaceA, "down")
            #expect(await firstChange(changes, within: .seconds(5)) { $0.name == VethPair.interfaceB && !$0.isUp } != nil)
        }

        @Test func reportsMACChangesAndAddedAndRemovedLinks() async throws {
            let net = try VethPair()
            defer { net.remove() }
            let monitor = try NetworkNamespace.run(net.b) { try LinkMonitor() }
            defer { monitor.stop() }

            let macs = monitor.changes
            let newMAC = try #require(MACAddress("02:00:00:00:00:42"))
            try IPCommand.run("-n", net.b, "link", "set", VethPair.interfaceB, "address", newMAC.description)
            #expect(await firstChange(macs, within: .seconds(5)) { $0.mac == newMAC }?.name == VethPair.interfaceB)

            let additions = monitor.changes
            try IPCommand.run("-n", net.b, "link", "add", "mvlc", "type", "veth", "peer", "name", "mvld")
            let added = await firstChange(additions, within: .seconds(5)) { $0.name == "mvlc" }
            #expect(added?.isUp == false)
            #expect(monitor.link(named: "mvld") != nil)

            let removals = monitor.changes
            try IPCommand.run("-n", net.b, "link", "delete", "mvlc")
            let removed = await firstChange(removals, within: .seconds(5)) { link in
                link.name == "mvlc" && monitor.link(named: "mvlc") == nil
            }
            #expect(removed?.isUp == false)
            #expect(removed?.index == added?.index)
        }

        @Test func stopFinishesStreams() async throws {
            let net = try VethPair()
            defer { net.remove() }
            let monitor = try NetworkNamespace.run(net.b) { try LinkMonitor() }
            let changes = monitor.changes
            monitor.stop()
            monitor.stop()
            let ended = await withTaskGroup(of: Bool.self) { group in
                group.addTask { for await _ in changes {}; return true }
                group.addTask { try? await Task.sleep(for: .seconds(5)); return false }
                let first = await group.next() ?? false
                group.cancelAll()
                return first
            }
            #expect(ended)
            var late = monitor.changes.makeAsyncIterator()
            #expect(await late.next() == nil)
        }
    }
}
