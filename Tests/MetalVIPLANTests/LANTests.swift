import Foundation
import Testing
import VIPLabHarness

/// The real controller and speakers on a namespace LAN, checked from the client with libpcap captures.
/// Bounds here are generous on purpose: they say that failover happened; the bench measures how fast.
@Suite(.serialized) struct LANTests {
    let vip = "192.0.2.100"

    /// A LAN with the config applied, the controller and three speakers running on `store`, and the VIP's
    /// settled owner.
    func ready(on store: LabStore = .sqlite, caller: String = #function) async throws -> (LANLab, Int) {
        let lab = try await LANLab(etcdMembers: store.etcdMembers, embedded: store.scheme, caller: caller)
        try await lab.configure(labConfig)
        try lab.start("controller", namespace: "\(lab.prefix)c", [lab.metalvip, "controller", "--store", lab.store])
        try lab.startSpeakers()
        let owner = try #require(try await lab.waitForSettledOwner(vip), "nobody answered for \(vip):\n\(lab.recentLogs())")
        return (lab, owner)
    }

    @Test(arguments: LabStore.allCases)
    func crashFailoverAfterKillNineAndLinkCut(on store: LabStore) async throws {
        let (lab, owner) = try await ready(on: store)
        let (target, transition, killedAt) = try await crashMove(lab, vip, owner: owner)
        let burst = target.gratuitous.filter { $0.mac == transition.to && $0.atNs >= killedAt }
        #expect(burst.contains { $0.operation == "request" } && burst.contains { $0.operation == "reply" },
                "gratuitous ARP in both forms from the taker")
    }

    @Test(arguments: LabStore.allCases)
    func gracefulHandoverOnSIGTERM(on store: LabStore) async throws {
        let (lab, owner) = try await ready(on: store)
        try await handoverMove(lab, vip, owner: owner)
        #expect(lab.log("n\(owner)").contains("released 1 claims and the node lease in"))
    }

    @Test(arguments: LabStore.allCases)
    func aPausedOwnerIsSilentAfterItsDeadlineAndAfterSIGCONT(on store: LabStore) async throws {
        let (lab, owner) = try await ready(on: store)
        // Outside a store write: a speaker stopped inside one stalls an embedded store (the test below).
        let (report, stoppedAt) = try await lab.probe([vip], durationMs: 4000, faultAfterMs: 700) {
            try await lab.pause(node: owner, insideStoreWrite: false)
            try await Task.sleep(for: .milliseconds(1500))
            lab.signal(node: owner, SIGCONT)
        }
        let target = try checked(report.targets[vip], lab)
        let first = try #require(target.transitions.first, "the VIP never moved off the paused node")
        #expect(lab.node(ofMAC: first.from) == owner && lab.node(ofMAC: first.to) != owner)
        #expect(first.atNs - stoppedAt < 1_500_000_000)
        // Back from SIGCONT, the owner may win the VIP back, but only after the taker let go: every change of
        // hands is a clean transition, and no request was ever answered by two MACs (checked above).
        for transition in target.transitions { #expect(transition.silenceNs > 0) }
    }

    /// The embedded stores' limit: their writers share one lock (a `flock`, or SQLite's write lock), so an
    /// owner stopped while it holds it stops every renewal and claim until SIGCONT. Nobody can take its VIPs;
    /// what must hold is that nobody answers twice, and that service comes back once the owner runs again.
    @Test(arguments: LabStore.embedded)
    func anOwnerPausedInsideAStoreWriteStallsTheEmbeddedStoreButNeverDoubleAnswers(on store: LabStore) async throws {
        let (lab, owner) = try await ready(on: store)
        var resumedAt: Int64 = 0
        let (report, stoppedAt) = try await lab.probe([vip], durationMs: 4000, faultAfterMs: 700) {
            try await lab.pause(node: owner, insideStoreWrite: true)
            try await Task.sleep(for: .milliseconds(1500))
            resumedAt = monotonicNanoseconds()
            lab.signal(node: owner, SIGCONT)
        }
        let target = try checked(report.targets[vip], lab)
        // Nobody could renew or claim behind the stopped writer: no other node answered while it was stopped.
        for (mac, first) in target.firstReplyNs where lab.node(ofMAC: mac) != owner {
            #expect(first > resumedAt, "n\(lab.node(ofMAC: mac) ?? 0) answered while the store was stalled")
        }
        let ownerMAC = try #require(lab.macs[owner])
        #expect(target.firstReplyNs[ownerMAC].map { $0 < stoppedAt } == true, "the owner answered before it was stopped")
        let answeredAgain = target.lastReplyNs.values.contains { $0 > resumedAt }
        #expect(answeredAgain, "the VIP is answered again after SIGCONT")
        for transition in target.transitions { #expect(transition.silenceNs > 0) }
    }

    @Test func theVIPMovesWhenTheOwnersInterfaceGoesDown() async throws {
        let (lab, owner) = try await ready()
        let (report, downAt) = try await lab.probe([vip], durationMs: 2500, faultAfterMs: 700) {
            try await lab.setInterface(node: owner, up: false)
        }
        let target = try checked(report.targets[vip], lab)
        let transition = try #require(target.transitions.first, "the VIP never moved")
        #expect(lab.node(ofMAC: transition.to) != owner)
        #expect(transition.atNs - downAt < 1_000_000_000, "released at once on the netlink event")
    }

    @Test(arguments: LabStore.allCases)
    func unassignedAndUnadvertisedAddressesAreNeverAnswered(on store: LabStore) async throws {
        let (lab, _) = try await ready(on: store)
        let status = try await lab.cli("get", "services", "hidden")
        #expect(status.contains("192.0.2.200"), "the dark pool's service has an address: \(status)")
        let report = try await lab.probe(["192.0.2.200", "192.0.2.149", vip], durationMs: 800)
        #expect(report.targets["192.0.2.200"]?.replies.isEmpty == true, "a pool no advertisement selects")
        #expect(report.targets["192.0.2.149"]?.replies.isEmpty == true, "an address nobody was given")
        #expect(report.targets[vip]?.replies.count == 1)
    }

    @Test func manyVIPsSpreadAndEachHasOneMAC() async throws {
        let lab = try await LANLab()
        var yaml = labConfig
        for index in 0..<12 {
            yaml += "\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s\(index)}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\n"
        }
        try await lab.configure(yaml)
        try lab.startSpeakers()
        _ = try await lab.waitForOwner(vip)
        try await Task.sleep(for: .milliseconds(500))
        let vips = (100...112).map { "192.0.2.\($0)" }
        let report = try await lab.probe(vips, durationMs: 600)
        var owners: Set<Int> = []
        for vip in vips {
            let target = try checked(report.targets[vip], lab)
            #expect(target.replies.count == 1, "\(vip): \(target.replies)")
            if let mac = target.replies.keys.first, let node = lab.node(ofMAC: mac) { owners.insert(node) }
        }
        #expect(owners.count >= 2, "VIPs spread across nodes: \(owners)")
    }

    @Test func malformedFramesChangeNothingAndCrashNothing() async throws {
        let (lab, owner) = try await ready()
        let blast = try await LANLab.shell(["ip", "netns", "exec", "\(lab.prefix)c", lab.lab, "blast", "--seed", "7", "--random-frames", "20000"])
        #expect(blast.status == 0, "\(blast.output)")
        #expect(blast.output.contains("\"sent\""))
        for node in 1...lab.nodes {
            #expect(lab.process("n\(node)")?.isRunning == true, "speaker n\(node) survived")
        }
        let report = try await lab.probe([vip, "192.0.2.149"], durationMs: 500)
        let target = try checked(report.targets[vip], lab)
        #expect(target.replies.count == 1 && lab.node(ofMAC: target.replies.keys.first!) == owner, "same owner as before")
        #expect(report.targets["192.0.2.149"]?.replies.isEmpty == true)
    }
}
