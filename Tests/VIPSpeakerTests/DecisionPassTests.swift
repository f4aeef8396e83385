import Foundation
import Synchronization
import Testing
import VIPAnnounce
import VIPLease
import VIPModel
import VIPSpeaker
import VIPStore

/// What starts a decision pass: never a renewal that only moves the renew time.
@Suite(.serialized) struct DecisionPassTests {
    /// The node lease of a node the test plays, "node-x", with its interface down: it is never a candidate,
    /// so nothing it does moves a VIP (which would start passes of its own through the claims).
    func lease(labels: [String: String], renewal: Int) throws -> Data {
        try RecordCoding.encode(NodeLease(
            lease: LeaseRecord(holder: "node-x", durationMilliseconds: 1_000, acquireTime: "t0", renewTime: "t\(renewal)",
                               transitions: 0),
            labels: labels, interfaces: [NodeInterface(name: "eth0", up: false, mac: MACAddress(value: 0x0200_0000_0099))]))
    }

    /// Waits (bounded) until the speaker answers for every VIP and its pass count held still for 500 ms.
    func settle(_ lab: SpeakerLab, vips: [IPAddress]) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(20)
        var last = -1
        var stillSince = ContinuousClock.now
        while ContinuousClock.now < deadline {
            let passes = await lab.speakers[0].decisionPasses
            if passes != last {
                last = passes
                stillSince = ContinuousClock.now
            } else if ContinuousClock.now - stillSince >= .milliseconds(500), vips.allSatisfy({ lab.answering($0) == [0] }) {
                return passes
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("the speaker never settled: \(last) passes, answering \(vips.map { lab.answering($0) })")
        return last
    }

    @Test func renewalsStartNoPassAndAnExpiryOrALabelChangeStartsOne() async throws {
        let vips = ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
        let lab = try await SpeakerLab(vips: vips) { $0.resyncInterval = .seconds(3600) }
        let key = Keyspace.nodeLease("node-x")
        // node-x renews every 20 ms (its lease lasts 1 s) from before node-a starts until told to stop.
        let renewals = Mutex(0)
        let store = lab.store
        let renewing = Task {
            for renewal in 0..<10_000 where !Task.isCancelled {
                try await store.put(key, try lease(labels: ["zone": "a"], renewal: renewal))
                renewals.withLock { $0 += 1 }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        while renewals.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(5)) }
        lab.start(0)
        let before = try await settle(lab, vips: vips.compactMap(IPAddress.init))
        #expect(before >= 1)

        // 50 more renewals of node-x, and node-a's own renewals meanwhile (bounded: 50 take about 1 s).
        let settledAt = renewals.withLock { $0 }
        for _ in 0..<1_000 where renewals.withLock({ $0 }) < settledAt + 50 { try await Task.sleep(for: .milliseconds(10)) }
        renewing.cancel()
        _ = await renewing.result  // a cancelled last write may throw CancellationError: no matter
        #expect(renewals.withLock { $0 } >= settledAt + 50)
        try await Task.sleep(for: .milliseconds(100))
        let afterRenewals = await lab.speakers[0].decisionPasses
        #expect(afterRenewals == before, "renewals alone started \(afterRenewals - before) passes")

        // A changed label is a changed status: one pass.
        try await lab.store.put(key, try lease(labels: ["zone": "b"], renewal: 51))
        try await Task.sleep(for: .milliseconds(400))
        let afterLabel = await lab.speakers[0].decisionPasses
        #expect(afterLabel == afterRenewals + 1, "a label change started \(afterLabel - afterRenewals) passes, not one")

        // node-x stops renewing: its expiry, judged 1 s after the last change was seen, is one pass.
        try await Task.sleep(for: .milliseconds(1_500))
        let afterExpiry = await lab.speakers[0].decisionPasses
        #expect(afterExpiry == afterLabel + 1, "an expiry started \(afterExpiry - afterLabel) passes, not one")
        #expect(vips.compactMap(IPAddress.init).allSatisfy { lab.answering($0) == [0] })
        await lab.stopAll()
    }

    @Test func oneWatchCoversTheKeyspaceAndKeysOutsideTheSpeakersStartNoPass() async throws {
        let vips = ["192.0.2.10", "192.0.2.11"]
        let lab = try await SpeakerLab(vips: vips) { $0.resyncInterval = .seconds(3600) }
        lab.start(0)
        let before = try await settle(lab, vips: vips.compactMap(IPAddress.init))
        #expect(lab.stores[0].watches.withLock { $0.map(\.prefix) } == [""], "one watch, over the whole keyspace")

        // Move history and the controller's lease live under the same watch; 40 writes of each start nothing.
        for index in 0..<40 {
            try await lab.store.put(Keyspace.events(of: ObjectKey(.service, namespace: "default", name: "svc-0")), Data("{}".utf8))
            try await lab.store.put(Keyspace.controllerLease, Data("not a lease \(index)".utf8))
        }
        try await Task.sleep(for: .milliseconds(400))
        let afterUnrelated = await lab.speakers[0].decisionPasses
        #expect(afterUnrelated == before, "keys outside the speaker's started \(afterUnrelated - before) passes")

        // A service written again is an object change on that same watch: one pass.
        let service = try #require(try await lab.store.get("services/default/svc-0"))
        try await lab.store.put(service.key, service.value)
        try await Task.sleep(for: .milliseconds(400))
        let afterObject = await lab.speakers[0].decisionPasses
        #expect(afterObject == before + 1, "an object change started \(afterObject - before) passes, not one")
        #expect(lab.stores[0].watches.withLock { $0.count } == 1)
        await lab.stopAll()
    }

    /// The watch ends as a compaction (or a lost connection) ends it, and a claim is deleted behind the
    /// speaker's back right then: it re-lists, watches again from exactly the new listing's revision, takes
    /// the lost claim back, and rewrites none of the claims it still holds.
    @Test(arguments: [StoreError.compacted(requested: 1, oldestAvailable: 2), StoreError.unavailable("cut by the test")])
    func theWatchRelistsAndResumesWithoutLosingOrRepeatingAClaim(_ cut: StoreError) async throws {
        let vips = ["192.0.2.10", "192.0.2.11", "192.0.2.12"].compactMap(IPAddress.init)
        let lab = try await SpeakerLab(vips: vips.map(\.description)) { $0.resyncInterval = .seconds(3600) }
        lab.start(0)
        _ = try await settle(lab, vips: vips)
        let store = lab.stores[0]
        #expect(await lab.speakers[0].watchListings == 1)
        func claim(_ address: IPAddress) async throws -> (node: String, revision: Revision)? {
            guard let record = try await lab.store.get(ClaimPlanner.claimKey(address)) else { return nil }
            return (try RecordCoding.decode(Claim.self, from: record.value).node, record.modRevision)
        }
        let kept = [vips[0], vips[2]]
        var keptBefore: [Revision] = []
        for address in kept { keptBefore.append(try #require(try await claim(address)).revision) }
        let listedBefore = store.listings.withLock { $0.count }

        // The re-list waits until the delete (and the compaction) is done: otherwise it may list first, and
        // the compaction then ends its new watch too (a third listing, correct, but not this test's case).
        store.listingsHeld.store(true, ordering: .relaxed)
        #expect(store.cutWatches(with: cut) == 1, "exactly one watch was open")
        let deleted = try await lab.store.delete(ClaimPlanner.claimKey(vips[1]))
        if case .compacted = cut { try await lab.store.compact(through: deleted) }
        store.listingsHeld.store(false, ordering: .relaxed)

        // Bounded: the lost claim comes back within a few seconds.
        var retaken: (node: String, revision: Revision)?
        for _ in 0..<250 {
            if let now = try await claim(vips[1]), now.revision > deleted {
                retaken = now
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(retaken?.node == "node-a", "the claim deleted while the watch was down was never taken back")
        _ = try await settle(lab, vips: vips)
        #expect(await lab.speakers[0].watchListings == 2)
        // The watch's own listings (the snapshot reload lists the object prefixes through the same store).
        let relisted = store.listings.withLock { $0 }.dropFirst(listedBefore)
            .filter { [Keyspace.nodeLeasesPrefix, Keyspace.claimsPrefix].contains($0.prefix) }
        #expect(relisted.map(\.prefix) == [Keyspace.nodeLeasesPrefix, Keyspace.claimsPrefix])
        let watches = store.watches.withLock { $0 }
        #expect(watches.map(\.prefix) == ["", ""])
        #expect(watches.last?.revision == relisted.first?.revision, "the watch resumed at the listing's revision")
        var keptAfter: [Revision] = []
        for address in kept { keptAfter.append(try #require(try await claim(address)).revision) }
        #expect(keptAfter == keptBefore, "claims the speaker still held were written again")
        await lab.stopAll()
    }
}
