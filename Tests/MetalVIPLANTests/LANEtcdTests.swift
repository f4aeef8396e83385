import Foundation
import Testing
import VIPLabHarness

/// The speakers and controllers on etcd, with etcd members in their own namespaces on the LAN: what
/// happens when etcd restarts, when its leader dies, and when the leading controller dies.
@Suite(.serialized) struct LANEtcdTests {
    let vip = "192.0.2.100"

    @Test func etcdRestartSilencesEveryoneThenEverythingComesBack() async throws {
        let lab = try await LANLab(etcdMembers: 1)
        let etcd = try #require(lab.etcd)
        try await lab.configure(labConfig)
        try lab.startSpeakers()
        let owner = try #require(try await lab.waitForSettledOwner(vip), "nobody answered for \(vip)")
        let before = try await assignedAddresses(lab)
        #expect(before["web"] == [vip])

        let takes = { (node: Int) in lab.log("n\(node)").components(separatedBy: "took \(self.vip) ").count - 1 }
        let takesBefore = (1...lab.nodes).map(takes)

        await etcd.kill(member: 0)
        // Past every speaker's lease deadline (200 ms): nobody can renew, so nobody may answer.
        try await Task.sleep(for: .milliseconds(800))
        let outage = try await lab.probe([vip], durationMs: 600)
        #expect(outage.targets[vip]?.replies.isEmpty == true, "a speaker answered without a live lease: \(String(describing: outage.targets[vip]?.replies))")

        try etcd.start(member: 0)
        try await etcd.waitUntilHealthy()
        let back = try #require(try await lab.waitForSettledOwner(vip, timeout: .seconds(20)), "\(vip) was not announced again")
        #expect(back == owner, "the same node announces it again (its rendezvous rank did not change)")
        // Re-proven in place: after an outage that blinded everyone, no other node grabbed it meanwhile.
        for node in 1...lab.nodes where node != owner {
            #expect(takes(node) == takesBefore[node - 1], "n\(node) took \(vip) after the outage")
        }
        let after = try checked(try await lab.probe([vip], durationMs: 600).targets[vip], lab)
        #expect(after.replies.count == 1)
        #expect(try await assignedAddresses(lab) == before, "assignments unchanged")
        for node in 1...lab.nodes {
            #expect(lab.process("n\(node)")?.isRunning == true, "speaker n\(node) rode out the outage")
            let log = lab.log("n\(node)")
            #expect(log.contains("stays silent until the store is back"), "the trade-off is logged (n\(node))")
            #expect(log.contains("node lease renewed again after"), "n\(node) reconnected by itself")
        }
    }

    @Test func killingTheEtcdLeaderIsABriefPauseWithoutDoubleAnswers() async throws {
        let lab = try await LANLab(etcdMembers: 3)
        let etcd = try #require(lab.etcd)
        try await lab.configure(labConfig)
        try lab.startSpeakers()
        _ = try #require(try await lab.waitForOwner(vip), "nobody answered for \(vip)")
        let leader = try #require(try await etcd.leader(), "no etcd leader")

        let (report, killedAt) = try await lab.probe([vip], durationMs: 6000, faultAfterMs: 1000) {
            await etcd.kill(member: leader)
        }
        let target = try checked(report.targets[vip], lab)
        let pause = target.longestSilenceNs ?? .max
        #expect(pause < 4_000_000_000, "a brief pause, not an outage: \(pause / 1_000_000) ms")
        // Answered again by the end of the probe, by exactly one MAC at a time (checked above).
        let lastReply = target.lastReplyNs.values.max() ?? 0
        #expect(lastReply > killedAt + 2_000_000_000, "still announced after the election")
        #expect(try await etcd.leader() != nil, "the two remaining members elected a leader")
    }

    @Test func aStandbyControllerFinishesAPendingAllocationAfterTheLeaderIsKilled() async throws {
        let lab = try await LANLab(nodes: 2, etcdMembers: 1)
        try await lab.configure(labConfig)
        let leaseMs = 1000
        // Each controller in its own namespace, so each has its own loopback for the metrics port.
        for node in 1...2 {
            try lab.start("controller\(node)", namespace: "\(lab.prefix)n\(node)",
                          [lab.metalvip, "controller", "--store", lab.store, "--identity", "c\(node)",
                           "--lease-duration-ms", String(leaseMs)])
            if node == 1 { try await waitForLog(lab, "controller1", "acquired the controller lease") }
        }
        try await Task.sleep(for: .milliseconds(500))
        #expect(!lab.log("controller2").contains("acquired the controller lease"), "one leader at a time")

        kill(try #require(lab.process("controller1")).processIdentifier, SIGKILL)
        let killedAt = ContinuousClock.now
        try await lab.cli("apply", "-f", "-", stdin: """
            apiVersion: v1
            kind: Service
            metadata: {name: late}
            spec: {type: LoadBalancer, ports: [{port: 8080}]}
            """)
        var assignedAfter: Duration?
        // Bounded: polls for at most 10 lease durations.
        for _ in 0..<(10 * leaseMs / 50) {
            if try await assignedAddresses(lab)["late"]?.isEmpty == false {
                assignedAfter = ContinuousClock.now - killedAt
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let took = try #require(assignedAfter, "the standby never assigned the pending service")
        // The standby takes over once the dead leader's lease runs out, then reconciles at once; the
        // extra second covers its standby poll and the CLI round trips of this check.
        #expect(took < .milliseconds(leaseMs + 1000), "assigned \(took) after the kill")
        #expect(lab.log("controller2").contains("acquired the controller lease"))
        // No address handed out twice: no service here shares, so every address has one service.
        let addresses = try await assignedAddresses(lab).values.flatMap { $0 }
        #expect(addresses.count == 3 && Set(addresses).count == addresses.count, "\(addresses)")
    }

    private func waitForLog(_ lab: LANLab, _ name: String, _ text: String) async throws {
        for _ in 0..<200 where !lab.log(name).contains(text) { try await Task.sleep(for: .milliseconds(50)) }
        #expect(lab.log(name).contains(text), "\(name) never logged \"\(text)\": \(lab.log(name))")
    }
}
