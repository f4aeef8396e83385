import Testing
import VIPForwarding
import VIPModel

@Suite struct ForwardingPlannerTests {
    typealias F = Fixture

    @Test func readyEndpointsWinAndTerminatingServeOnlyWhenNoneIsReady() {
        let ready = F.endpoint("192.0.2.1")
        let terminating = F.endpoint("192.0.2.2", ready: false, serving: true, terminating: true)
        let notServing = F.endpoint("192.0.2.3", ready: false, serving: false, terminating: true)
        let unready = F.endpoint("192.0.2.4", ready: false)
        #expect(BackendSelection.usable([ready, terminating, notServing, unready]) == [ready])
        #expect(BackendSelection.usable([terminating, notServing, unready]) == [terminating])
        #expect(BackendSelection.usable([notServing, unready]).isEmpty)
        #expect(BackendSelection.usable([]).isEmpty)
    }

    @Test func servicePortMapsToEndpointPortByNameAndProtocol() {
        let service = F.service("web", ports: [ServicePort(name: "http", port: 80), ServicePort(name: "dns", port: 53, protocol: .udp),
                                               ServicePort(name: "metrics", port: 9100)])
        let slice = F.slice("web", [F.endpoint("192.0.2.1")], ports: [
            EndpointSlice.Port(name: "dns", port: 5353, protocol: .tcp),  // same name, other protocol: no match
            EndpointSlice.Port(name: "http", port: 8080),
        ])
        let state = F.plan([service], vips: ["web": ["198.51.100.10"]], slices: [slice])
        #expect(F.rule(state, "web")?.backends == [Backend(address: F.ip("192.0.2.1"), port: 8080)])
        #expect(F.rule(state, "web", port: 53) == nil)
        #expect(F.rule(state, "web", port: 9100) == nil)
        #expect(state.rules.count == 1)
    }

    @Test func unnamedServicePortMapsToTheUnnamedEndpointPort() {
        let service = F.service("web", ports: [ServicePort(name: "", port: 80)])
        let named = F.slice("web", [F.endpoint("192.0.2.1")], ports: [EndpointSlice.Port(name: "http", port: 8080)], name: "a")
        let unnamed = F.slice("web", [F.endpoint("192.0.2.2")], ports: [EndpointSlice.Port(port: 9090)], name: "b")
        let state = F.plan([service], vips: ["web": ["198.51.100.10"]], slices: [named, unnamed])
        #expect(F.rule(state, "web")?.backends == [Backend(address: F.ip("192.0.2.2"), port: 9090)])
    }

    @Test func clusterUsesEveryNodesEndpointsAndMasquerades() {
        let slice = F.slice("web", [F.endpoint("192.0.2.1", node: "node-a"), F.endpoint("192.0.2.2", node: "node-b")])
        let state = F.plan([F.service("web")], vips: ["web": ["198.51.100.10"]], slices: [slice])
        let rule = F.rule(state, "web")
        #expect(rule?.backends.map(\.address) == [F.ip("192.0.2.1"), F.ip("192.0.2.2")])
        #expect(rule?.masquerade == true)
        #expect(state.usableEndpoints(of: F.key("web")) == 2)
    }

    @Test func localUsesOnlyThisNodesEndpointsAndKeepsTheSource() {
        let slice = F.slice("web", [F.endpoint("192.0.2.1", node: "node-a"), F.endpoint("192.0.2.2", node: "node-b"),
                                    F.endpoint("192.0.2.3")])
        let service = F.service("web", policy: .local)
        let onA = F.plan([service], vips: ["web": ["198.51.100.10"]], slices: [slice], node: "node-a")
        #expect(F.rule(onA, "web")?.backends.map(\.address) == [F.ip("192.0.2.1")])
        #expect(F.rule(onA, "web")?.masquerade == false)
        let onC = F.plan([service], vips: ["web": ["198.51.100.10"]], slices: [slice], node: "node-c")
        #expect(F.rule(onC, "web") == nil)
        #expect(onC.vips == [F.ip("198.51.100.10")], "the VIP stays programmed, so its traffic is rejected, not routed")
        #expect(onC.services == [F.key("web")])
        #expect(onC.usableEndpoints(of: F.key("web")) == 0)
    }

    @Test func localFallsBackToThisNodesTerminatingEndpoints() {
        let slice = F.slice("web", [F.endpoint("192.0.2.1", node: "node-a", ready: false, serving: true, terminating: true),
                                    F.endpoint("192.0.2.2", node: "node-b")])
        let state = F.plan([F.service("web", policy: .local)], vips: ["web": ["198.51.100.10"]], slices: [slice], node: "node-a")
        #expect(F.rule(state, "web")?.backends.map(\.address) == [F.ip("192.0.2.1")])
    }

    @Test func nodesWithLocalEndpointsCountOnlyUsableOnes() {
        let slice = F.slice("web", [
            F.endpoint("192.0.2.1", node: "node-a"),
            F.endpoint("192.0.2.2", node: "node-b", ready: false),
            F.endpoint("192.0.2.3", node: "node-c", ready: false, serving: true, terminating: true),
            F.endpoint("192.0.2.4"),
        ])
        #expect(ForwardingPlanner.nodesWithLocalEndpoints([slice]) == ["node-a", "node-c"])
        #expect(ForwardingPlanner.nodesWithLocalEndpoints([slice], excluding: [F.ip("192.0.2.1")]) == ["node-c"])
        #expect(ForwardingPlanner.nodesWithLocalEndpoints([]).isEmpty)
    }

    @Test func unhealthyEndpointsLeaveAndAllUnhealthyLeavesThePortOut() {
        let slice = F.slice("web", [F.endpoint("192.0.2.1"), F.endpoint("192.0.2.2")])
        let one = F.plan([F.service("web")], vips: ["web": ["198.51.100.10"]], slices: [slice],
                         unhealthy: [F.key("web"): [F.ip("192.0.2.1")]])
        #expect(F.rule(one, "web")?.backends.map(\.address) == [F.ip("192.0.2.2")])
        #expect(one.usableEndpoints(of: F.key("web")) == 1)
        let all = F.plan([F.service("web")], vips: ["web": ["198.51.100.10"]], slices: [slice],
                         unhealthy: [F.key("web"): [F.ip("192.0.2.1"), F.ip("192.0.2.2")]])
        #expect(all.rules.isEmpty)
        #expect(all.vips == [F.ip("198.51.100.10")])
        // Health of another service's endpoint with the same address does not matter here.
        let other = F.plan([F.service("web")], vips: ["web": ["198.51.100.10"]], slices: [slice],
                           unhealthy: [F.key("api"): [F.ip("192.0.2.1")]])
        #expect(F.rule(other, "web")?.backends.count == 2)
    }

    @Test func sharedVIPSendsEachServicesPortsToItsOwnEndpoints() {
        let web = F.service("web", ports: [ServicePort(port: 80)])
        let dns = F.service("dns", ports: [ServicePort(port: 53, protocol: .udp)])
        let slices = [F.slice("web", [F.endpoint("192.0.2.1")]),
                      F.slice("dns", [F.endpoint("192.0.2.2")], ports: [EndpointSlice.Port(port: 5353, protocol: .udp)])]
        let state = F.plan([web, dns], vips: ["web": ["198.51.100.10"], "dns": ["198.51.100.10"]], slices: slices)
        #expect(F.rule(state, "web")?.backends == [Backend(address: F.ip("192.0.2.1"), port: 8080)])
        #expect(F.rule(state, "dns", port: 53)?.backends == [Backend(address: F.ip("192.0.2.2"), port: 5353)])
        #expect(F.rule(state, "dns", port: 53)?.vips == [F.ip("198.51.100.10")])
        #expect(state.vips == [F.ip("198.51.100.10")])
    }

    @Test func conflictingClaimOnOneVIPPortGoesToTheFirstServiceOnly() {
        let slices = [F.slice("a", [F.endpoint("192.0.2.1")]), F.slice("b", [F.endpoint("192.0.2.2")])]
        let state = F.plan([F.service("b"), F.service("a")], vips: ["a": ["198.51.100.10"], "b": ["198.51.100.10"]], slices: slices)
        #expect(F.rule(state, "a") != nil)
        #expect(F.rule(state, "b") == nil)
        #expect(state.services == [F.key("a"), F.key("b")])
    }

    @Test func dualStackForwardsEachFamilyToItsOwnEndpoints() {
        let slices = [F.slice("web", [F.endpoint("192.0.2.1")]), F.slice("web", [F.endpoint("2001:db8::1")])]
        let state = F.plan([F.service("web")], vips: ["web": ["198.51.100.10", "2001:db8:100::10"]], slices: slices)
        #expect(F.rule(state, "web", family: .ipv4)?.backends.map(\.address) == [F.ip("192.0.2.1")])
        #expect(F.rule(state, "web", family: .ipv4)?.vips == [F.ip("198.51.100.10")])
        #expect(F.rule(state, "web", family: .ipv6)?.backends.map(\.address) == [F.ip("2001:db8::1")])
        #expect(F.rule(state, "web", family: .ipv6)?.vips == [F.ip("2001:db8:100::10")])
        #expect(state.usableEndpoints(of: F.key("web")) == 2)
        // An IPv6-only VIP with only IPv4 endpoints has nothing to forward to.
        let mismatch = F.plan([F.service("web")], vips: ["web": ["2001:db8:100::10"]], slices: [slices[0]])
        #expect(mismatch.rules.isEmpty)
    }

    @Test func onlyLoadBalancersWithAnAssignmentArePlanned() {
        let slices = [F.slice("web", [F.endpoint("192.0.2.1")]), F.slice("internal", [F.endpoint("192.0.2.2")]),
                      F.slice("pending", [F.endpoint("192.0.2.3")])]
        let state = F.plan([F.service("web"), F.service("internal", type: .clusterIP), F.service("pending")],
                           vips: ["web": ["198.51.100.10"], "internal": ["198.51.100.11"]], slices: slices)
        #expect(state.services == [F.key("web")])
        #expect(state.vips == [F.ip("198.51.100.10")])
    }

    @Test func duplicateEndpointsAcrossSlicesAreOneBackend() {
        let slices = [F.slice("web", [F.endpoint("192.0.2.1")], name: "a"), F.slice("web", [F.endpoint("192.0.2.1")], name: "b")]
        let state = F.plan([F.service("web")], vips: ["web": ["198.51.100.10"]], slices: slices)
        #expect(F.rule(state, "web")?.backends.count == 1)
    }
}
