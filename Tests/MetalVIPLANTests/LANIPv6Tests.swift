import Foundation
import Testing
import VIPLabHarness

/// IPv6 on the namespace LAN (2001:db8::/64 only): the speakers' NDP responder seen from the client, with
/// the probe's libpcap captures, `ndisc6`, and the client kernel's own neighbour cache. Bounds are generous:
/// they say the thing happened; the bench measures how fast.
@Suite(.serialized) struct LANIPv6Tests {
    /// web6: single-stack IPv6, the lowest address of the pool.
    let vip6 = "2001:db8::100"
    /// The dual-stack service `dual`: both addresses form one group and must always be on one node.
    let dual4 = "192.0.2.120"
    let dual6 = "2001:db8::120"

    /// A LAN with `labConfig` plus the IPv6 services, three speakers, and the owners of the given VIPs.
    func ready(_ vips: [String], caller: String = #function) async throws -> (LANLab, [String: Int]) {
        let lab = try await LANLab(caller: caller)
        try await lab.configure(labConfig + "\n---\n" + labIPv6Services)
        try lab.startSpeakers()
        var owners: [String: Int] = [:]
        for vip in vips {
            owners[vip] = try #require(try await lab.waitForSettledOwner(vip), "nobody answered for \(vip)")
        }
        return (lab, owners)
    }

    /// `ndisc6 -m` (wait for every advertisement, not just the first) from the client: the link-layer
    /// addresses it printed, lower-case.
    func ndisc6(_ lab: LANLab, _ vip: String) async throws -> [String] {
        let result = try await LANLab.shell(["ip", "netns", "exec", "\(lab.prefix)c", "ndisc6", "-m", "-n", "-r", "2",
                                             "-w", "400", vip, "eth0"])
        return result.output.split(separator: "\n").compactMap { line in
            guard let range = line.range(of: "Target link-layer address: ") else { return nil }
            return line[range.upperBound...].trimmingCharacters(in: .whitespaces).lowercased()
        }
    }

    /// The client kernel's neighbour cache entry for `address`: its MAC, or nil when it has none.
    func neighbour(_ lab: LANLab, _ address: String) async throws -> String? {
        let output = try await LANLab.shell(["ip", "-n", "\(lab.prefix)c", "-6", "neigh", "show", address, "dev", "eth0"]).output
        return output.components(separatedBy: "lladdr ").dropFirst().first?.split(separator: " ").first.map { $0.lowercased() }
    }

    /// The Ethernet group an NS for `address` goes to; only for addresses of the form 2001:db8::XYZ here.
    func group(lastHex: String) -> String {
        let padded = String(repeating: "0", count: 6 - lastHex.count) + lastHex
        let bytes = stride(from: 0, to: 6, by: 2).map { index in
            padded[padded.index(padded.startIndex, offsetBy: index)..<padded.index(padded.startIndex, offsetBy: index + 2)]
        }
        return "33:33:ff:" + bytes.joined(separator: ":")
    }

    /// Polls (bounded) until `condition` holds; returns whether it did.
    func eventually(_ timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }

    // MARK: resolution

    @Test func ndisc6ResolvesEachIPv6VIPToItsOwnersMACAndTheAdvertisementSaysSo() async throws {
        let (lab, owners) = try await ready([vip6, dual6])
        let report = try await lab.probe([vip6, dual6], durationMs: 400)
        for vip in [vip6, dual6] {
            let ownerMAC = try #require(lab.macs[owners[vip]!])
            #expect(try await ndisc6(lab, vip) == [ownerMAC], "\(vip): exactly one advertisement, from the owner")
            let target = try checked(report.targets[vip], lab)
            #expect(target.replies.keys.sorted() == [ownerMAC], "\(vip): \(target.replies)")
            #expect(target.answeredRequests > target.requests / 2, "\(vip): \(target.answeredRequests) of \(target.requests)")
            let fields = try #require(target.advertisements?[ownerMAC], "\(vip): no advertisement fields captured")
            let answers = target.replies[ownerMAC] ?? 0
            #expect(fields.flags == ["SO": answers], "solicited and override, never router: \(fields.flags)")
            #expect(fields.targetLinkLayerAddresses == [ownerMAC: answers], "TLLA is the owner's MAC: \(fields.targetLinkLayerAddresses)")
            #expect(fields.destinations == ["2001:db8::1": answers], "unicast back to the solicitor: \(fields.destinations)")
        }
    }

    @Test func unicastSolicitationsAreAnsweredOnlyWhenSentToTheOwnersMAC() async throws {
        let (lab, owners) = try await ready([vip6])
        let owner = owners[vip6]!
        let ownerMAC = try #require(lab.macs[owner])
        let toOwner = try checked(try await lab.probe([vip6], durationMs: 400, unicastMAC: ownerMAC).targets[vip6], lab)
        #expect(toOwner.replies.keys.sorted() == [ownerMAC], "a NUD probe to the owner's MAC is answered: \(toOwner.replies)")
        #expect(toOwner.advertisements?[ownerMAC]?.flags.keys.sorted() == ["SO"])
        // Not known to the bridge, so flooded to every node: each sees it, and none may answer.
        let stranger = try await lab.probe([vip6], durationMs: 400, unicastMAC: "02:00:5e:10:00:99").targets[vip6]
        #expect(stranger?.requests ?? 0 > 0)
        #expect(stranger?.replies.isEmpty == true, "unicast to another MAC is never answered: \(stranger?.replies ?? [:])")
        let other = try #require((1...lab.nodes).first { $0 != owner })
        let toOther = try await lab.probe([vip6], durationMs: 400, unicastMAC: lab.macs[other]).targets[vip6]
        #expect(toOther?.replies.isEmpty == true, "a node that does not own the VIP stays silent: \(toOther?.replies ?? [:])")
    }

    /// The owner's interface gets a new MAC while it stays up: neighbours are told, answers carry the new MAC,
    /// unicast probes to it are answered, and those to the old one are not (a responder keyed to the old MAC
    /// would do both wrong).
    @Test func aNewMACWithoutALinkFlapIsUsedAtOnce() async throws {
        let (lab, owners) = try await ready([vip6])
        let owner = owners[vip6]!
        let oldMAC = try #require(lab.macs[owner])
        let newMAC = "02:00:5e:10:00:42"
        let (changing, _) = try await lab.probe([vip6], durationMs: 1500, faultAfterMs: 300) {
            try await LANLab.shell(["ip", "-n", "\(lab.prefix)n\(owner)", "link", "set", "dev", "eth0", "address", newMAC])
        }
        let told = try #require(changing.targets[vip6]).gratuitous.filter { $0.mac == newMAC }
        #expect(told.contains { $0.operation == "advertisement" }, "neighbours are told of the new MAC unasked: \(told)")
        let multicast = try #require(try await lab.probe([vip6], durationMs: 400).targets[vip6])
        #expect(multicast.replies.keys.sorted() == [newMAC], "\(multicast.replies)")
        #expect(multicast.advertisements?[newMAC]?.targetLinkLayerAddresses.keys.sorted() == [newMAC])
        let toNew = try #require(try await lab.probe([vip6], durationMs: 400, unicastMAC: newMAC).targets[vip6])
        #expect(toNew.replies.keys.sorted() == [newMAC], "a NUD probe to the new MAC is answered: \(toNew.replies)")
        let toOld = try #require(try await lab.probe([vip6], durationMs: 400, unicastMAC: oldMAC).targets[vip6])
        #expect(toOld.requests > 0 && toOld.replies.isEmpty, "the old MAC is not this node's any more: \(toOld.replies)")
    }

    @Test func pingResolvesTheVIPThroughTheClientsNeighbourCache() async throws {
        let (lab, owners) = try await ready([vip6])
        let ownerMAC = try #require(lab.macs[owners[vip6]!])
        #expect(try await neighbour(lab, vip6) == nil, "no entry before the ping")
        // Nothing listens on the VIP, so the echo may go unanswered: resolution is what is checked.
        _ = try await LANLab.shell(["ip", "netns", "exec", "\(lab.prefix)c", "ping", "-6", "-c", "1", "-W", "1", vip6])
        #expect(try await neighbour(lab, vip6) == ownerMAC, "the kernel resolved the VIP to its owner")
    }

    // MARK: moving

    @Test func crashFailoverOfAnIPv6VIPAfterKillNineAndLinkCut() async throws {
        let (lab, owners) = try await ready([vip6])
        let (target, transition, killedAt) = try await crashMove(lab, vip6, owner: owners[vip6]!)
        let burst = target.gratuitous.filter { $0.mac == transition.to && $0.atNs >= killedAt }
        #expect(!burst.isEmpty && burst.allSatisfy { $0.operation == "advertisement" && $0.flags == "O" },
                "unsolicited advertisements, override set and solicited clear, from the taker: \(burst)")
        #expect(burst.allSatisfy { $0.targetLinkLayerAddress == transition.to })
        #expect(target.advertisements?[transition.to]?.flags.keys.sorted() == ["SO"])
    }

    @Test func gracefulHandoverOfAnIPv6VIPOnSIGTERM() async throws {
        let (lab, owners) = try await ready([vip6])
        try await handoverMove(lab, vip6, owner: owners[vip6]!)
    }

    /// The client sends nothing after the handover, and its entry is REACHABLE for far longer than the test:
    /// only the taker's unsolicited advertisement (override set) can move it.
    @Test func theUnsolicitedAdvertisementMovesTheClientsNeighbourCache() async throws {
        let (lab, owners) = try await ready([vip6])
        let owner = owners[vip6]!
        _ = try await LANLab.shell(["ip", "netns", "exec", "\(lab.prefix)c", "ping", "-6", "-c", "1", "-W", "1", vip6])
        #expect(try await neighbour(lab, vip6) == lab.macs[owner])
        lab.signal(node: owner, SIGTERM)
        var cached: String?
        let moved = try await eventually(.seconds(3)) {
            cached = try await neighbour(lab, vip6)
            return cached != nil && cached != lab.macs[owner]
        }
        #expect(moved, "the client's entry still says \(cached ?? "nothing")")
        let taker = try #require(try await lab.waitForOwner(vip6))
        #expect(cached == lab.macs[taker], "the cache moved to the node that answers now")
    }

    @Test func aDualStackServiceFailsOverAsOneAfterKillNineAndLinkCut() async throws {
        try await dualStackMovesAsOne(durationMs: 3000, within: 2_000_000_000) { lab, owner in try await lab.crash(node: owner) }
    }

    @Test func aDualStackServiceHandsOverAsOneOnSIGTERM() async throws {
        // Well before the lease could expire.
        try await dualStackMovesAsOne(durationMs: 2500, within: 1_000_000_000) { lab, owner in lab.signal(node: owner, SIGTERM) }
    }

    /// Both addresses of a dual-stack service sit on one node, and after `fault` to that node both move, once
    /// each, within `within` ns, to the same new node.
    func dualStackMovesAsOne(durationMs: Int, within: Int64, fault: (LANLab, Int) async throws -> Void) async throws {
        let (lab, owners) = try await ready([dual4, dual6])
        let owner = owners[dual4]!
        #expect(owners[dual6] == owner, "both families on one node: \(owners)")
        let (report, faultAt) = try await lab.probe([dual4, dual6], durationMs: durationMs) { try await fault(lab, owner) }
        var takers: Set<Int> = []
        for vip in [dual4, dual6] {
            let target = try checked(report.targets[vip], lab)
            let transition = try #require(target.transitions.first, "\(vip) never moved")
            #expect(target.transitions.count == 1, "\(vip): \(target.transitions.count) moves")
            #expect(lab.node(ofMAC: transition.from) == owner)
            #expect(transition.atNs - faultAt < within, "\(vip) moved within \(within / 1_000_000) ms")
            takers.insert(try #require(lab.node(ofMAC: transition.to)))
        }
        #expect(takers.count == 1 && !takers.contains(owner), "both families moved to the same new node: \(takers)")
    }

    // MARK: silence

    @Test func unassignedAndUnadvertisedIPv6AddressesAreNeverAnswered() async throws {
        let (lab, _) = try await ready([vip6])
        let status = try await lab.cli("get", "services", "hidden6")
        #expect(status.contains("2001:db8::200"), "the dark pool's IPv6 service has an address: \(status)")
        let report = try await lab.probe(["2001:db8::200", "2001:db8::149", "2001:db8::1:0:100", vip6], durationMs: 800)
        #expect(report.targets["2001:db8::200"]?.requests ?? 0 > 0)
        #expect(report.targets["2001:db8::200"]?.replies.isEmpty == true, "a pool no advertisement selects")
        #expect(report.targets["2001:db8::149"]?.replies.isEmpty == true, "an address nobody was given")
        #expect(report.targets["2001:db8::1:0:100"]?.replies.isEmpty == true, "outside every pool, same group as the VIP")
        #expect(report.targets[vip6]?.replies.count == 1)
    }

    @Test func malformedFramesChangeNothingAndCrashNothing() async throws {
        let (lab, owners) = try await ready([vip6, dual4, dual6])
        let blast = try await LANLab.shell(["ip", "netns", "exec", "\(lab.prefix)c", lab.lab, "blast", "--seed", "11",
                                            "--random-frames", "20000"])
        #expect(blast.status == 0, "\(blast.output)")
        #expect(blast.output.contains("\"sent\""))
        for node in 1...lab.nodes {
            #expect(lab.process("n\(node)")?.isRunning == true, "speaker n\(node) survived")
        }
        let report = try await lab.probe([vip6, dual4, dual6, "2001:db8::149"], durationMs: 500)
        for vip in [vip6, dual4, dual6] {
            let target = try checked(report.targets[vip], lab)
            #expect(target.replies.count == 1 && target.replies.keys.first.flatMap(lab.node(ofMAC:)) == owners[vip],
                    "\(vip): same owner as before: \(target.replies)")
        }
        #expect(report.targets["2001:db8::149"]?.replies.isEmpty == true)
    }

    // MARK: memberships

    /// The owner is in each VIP's solicited-node group and nobody else is; the group follows the VIP when the
    /// owner's interface goes down, and comes back with it (re-joined on the new socket) when it returns.
    @Test func solicitedNodeGroupsFollowTheVIPsAcrossAnInterfaceGoingDownAndUp() async throws {
        let (lab, owners) = try await ready([vip6, dual6])
        for (vip, last) in [(vip6, "100"), (dual6, "120")] {
            let group = group(lastHex: last)
            for node in 1...lab.nodes {
                let joined = try await lab.linkGroups(node: node).contains(group)
                #expect(joined == (node == owners[vip]), "n\(node) in \(group) for \(vip): \(joined)")
            }
        }
        let owner = owners[vip6]!
        let group = group(lastHex: "100")
        try await lab.setInterface(node: owner, up: false)
        var taker: Int?
        #expect(try await eventually {
            taker = try await lab.waitForOwner(vip6, timeout: .seconds(1))
            return taker != nil && taker != owner
        }, "the VIP moved off the downed interface")
        let interim = try #require(taker)
        #expect(try await eventually { try await lab.linkGroups(node: interim).contains(group) }, "the taker joined \(group)")
        try await lab.setInterface(node: owner, up: true)
        // The preferred node is back: the interim owner releases first, then the owner claims again.
        #expect(try await eventually(.seconds(8)) { try await lab.waitForOwner(vip6, timeout: .seconds(1)) == owner },
                "the VIP came back to n\(owner)")
        #expect(try await eventually { try await lab.linkGroups(node: owner).contains(group) },
                "n\(owner) re-joined \(group) on its reopened socket")
        #expect(try await eventually { try await !lab.linkGroups(node: interim).contains(group) },
                "n\(interim) left \(group) when it released the VIP")
        let report = try await lab.probe([vip6], durationMs: 300)
        #expect(try checked(report.targets[vip6], lab).replies.keys.sorted() == [lab.macs[owner]!])
    }

    /// 2001:db8::120 and 2001:db8::1:0:120 share their low 24 bits, so one group: it must stay while either
    /// VIP remains and go with the last one.
    @Test func aSharedSolicitedNodeGroupIsLeftOnlyWhenItsLastVIPGoes() async throws {
        let lab = try await LANLab(nodes: 1)
        let pair = ["2001:db8::120", "2001:db8::1:0:120"]
        // Services arrive while the lone speaker runs: its first reconcile may come before its first renewal,
        // and with no peer whose lease events would wake it, only an object change (or the 10 s resync) does.
        try lab.startSpeakers()
        try await Task.sleep(for: .milliseconds(500))
        try await lab.configure("""
            apiVersion: metallb.io/v1beta1
            kind: IPAddressPool
            metadata: {name: pair, namespace: metallb-system}
            spec: {addresses: [2001:db8::120/128, 2001:db8::1:0:120/128]}
            ---
            apiVersion: metallb.io/v1beta1
            kind: L2Advertisement
            metadata: {name: pair, namespace: metallb-system}
            spec: {ipAddressPools: [pair]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: a6}
            spec: {type: LoadBalancer, ipFamilyPolicy: SingleStack, ipFamilies: [IPv6], ports: [{port: 80}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: b6}
            spec: {type: LoadBalancer, ipFamilyPolicy: SingleStack, ipFamilies: [IPv6], ports: [{port: 80}]}
            """)
        for vip in pair { #expect(try await lab.waitForOwner(vip) == 1, "\(vip) answered by n1") }
        let group = group(lastHex: "120")
        #expect(try await lab.linkGroups(node: 1).contains(group))

        try await lab.cli("delete", "service", "a6")
        try await lab.cli("controller", "--once")
        var answered: [String] = []
        #expect(try await eventually {
            let report = try await lab.probe(pair, durationMs: 150)
            answered = pair.filter { report.targets[$0]?.replies.isEmpty == false }
            return answered.count == 1
        }, "one of the pair is withdrawn: still answered \(answered)")
        #expect(try await lab.linkGroups(node: 1).contains(group), "the group stays while \(answered) needs it")

        try await lab.cli("delete", "service", "b6")
        try await lab.cli("controller", "--once")
        #expect(try await eventually { try await !lab.linkGroups(node: 1).contains(group) }, "left with the last VIP")
        let report = try await lab.probe(pair, durationMs: 300)
        for vip in pair { #expect(report.targets[vip]?.replies.isEmpty == true, "\(vip) no longer answered") }
    }
}
