import Foundation
import Logging
import Synchronization
import Testing
import VIPAnnounce
import VIPClient
import VIPController
import VIPFileStore
import VIPForwarding
import VIPHealthCheck
import VIPModel
import VIPSpeaker
import VIPStore

/// Records every transaction instead of sending it to the kernel.
final class RecordingApplier: RulesetApplier {
    let updates = Mutex<[RulesetUpdate]>([])
    func apply(_ update: RulesetUpdate) async throws { updates.withLock { $0.append(update) } }
    var scripts: [String] { updates.withLock { $0.map(\.script) } }
}

/// A prober whose answers the test sets per endpoint address; it records what it was asked to check.
final class ScriptedProber: HealthProber {
    let failing = Mutex<Set<IPAddress>>([])
    let probed = Mutex<Set<IPAddress>>([])
    func probe(_ target: HealthTarget) async -> ProbeOutcome {
        probed.withLock { _ = $0.insert(target.address) }
        return failing.withLock { $0.contains(target.address) } ? .refused : .healthy("connected")
    }
}

/// In-process speakers with a data path over one file store: real decisions, recorded transactions.
final class DataPathLab: Sendable {
    let directory: String
    let store: FileStore
    let names = ["node-a", "node-b", "node-c"]
    let appliers: [RecordingApplier]
    let probers: [ScriptedProber]
    let speakers: [Speaker]
    let tasks = Mutex<[Int: Task<Void, Error>]>([:])

    init(_ yaml: String) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("metalvip-datapath-\(getpid())-\(UUID().uuidString)").path
        let store = try FileStore(directory: directory)
        self.store = store
        try await Self.apply("""
            apiVersion: metallb.io/v1beta1
            kind: IPAddressPool
            metadata: {name: lan}
            spec: {addresses: [192.0.2.0/24, 2001:db8::/64]}
            ---
            apiVersion: metallb.io/v1beta1
            kind: L2Advertisement
            metadata: {name: lan}
            ---
            \(yaml)
            """, to: store)
        var logger = Logger(label: "test")
        logger.logLevel = ProcessInfo.processInfo.environment["SPEAKER_TEST_LOG"] == nil ? .critical : .info
        _ = try await Controller(store: store, identity: "ctl", settings: .init(), logger: logger).runOnce()
        appliers = names.map { _ in RecordingApplier() }
        probers = names.map { _ in ScriptedProber() }
        var speakers: [Speaker] = []
        for (index, name) in names.enumerated() {
            var settings = Speaker.Settings(node: name, interfaces: ["eth0"])
            settings.leaseDuration = .milliseconds(600)
            settings.renewInterval = .milliseconds(100)
            let health = HealthMonitor(prober: probers[index], logger: logger)
            speakers.append(Speaker(store: store, settings: settings,
                                    interfaces: FakeInterfaces(mac: 0x0200_0000_0000 + UInt64(index + 1)),
                                    responder: RecordingResponder(),
                                    dataPath: DataPath(applier: appliers[index], health: health), logger: logger))
        }
        self.speakers = speakers
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    func apply(_ yaml: String) async throws { try await Self.apply(yaml, to: store) }

    static func apply(_ yaml: String, to store: any Store) async throws {
        _ = try await Applier(store: store).apply([ManifestFile(name: "test.yaml", text: yaml)])
    }

    func startAll() {
        for index in speakers.indices {
            let speaker = speakers[index]
            tasks.withLock { $0[index] = Task { try await speaker.run() } }
        }
    }

    func stopAll() async {
        for index in speakers.indices {
            let task = tasks.withLock { $0.removeValue(forKey: index) }
            task?.cancel()
            _ = try? await task?.value
        }
    }

    func answering(_ vip: IPAddress) -> [Int] {
        speakers.indices.filter { speakers[$0].table.answer(for: vip, on: 2) != nil }
    }

    /// Polls (bounded) until `condition` holds.
    func eventually(_ timeout: Duration = .seconds(20), _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return condition()
    }

    func eventually(_ timeout: Duration = .seconds(20), _ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await condition()
    }

    /// The only speaker answering for `vip` once it stayed so for `settle`, failing on any double answer.
    func settledOwner(_ vip: IPAddress, settle: Duration = .milliseconds(700)) async -> Int? {
        let deadline = ContinuousClock.now + .seconds(20)
        var owner: Int?
        var since = ContinuousClock.now
        while ContinuousClock.now < deadline {
            let now = answering(vip)
            #expect(now.count <= 1, "two speakers answer for \(vip): \(now)")
            if now.count == 1 {
                if owner != now[0] { owner = now[0]; since = ContinuousClock.now }
                if ContinuousClock.now - since >= settle { return owner }
            } else {
                owner = nil
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }
}

func slice(_ service: String, _ endpoints: [(String, String)], name: String? = nil) -> String {
    """
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: \(name ?? service + "-1"), labels: {kubernetes.io/service-name: \(service)}}
    addressType: IPv4
    ports: [{port: 8080}]
    endpoints:
    \(endpoints.map { "- {addresses: [\($0.0)], nodeName: \($0.1)}" }.joined(separator: "\n"))
    """
}

@Suite(.serialized) struct SpeakerDataPathTests {
    let vip = IPAddress("192.0.2.10")!

    @Test func theTableIsReplacedWholeAtStartThenChangedPieceByPieceAndRemovedOnShutdown() async throws {
        let lab = try await DataPathLab("""
            apiVersion: v1
            kind: Service
            metadata: {name: web, annotations: {metallb.io/loadBalancerIPs: 192.0.2.10}}
            spec: {type: LoadBalancer, ports: [{port: 80}]}
            ---
            \(slice("web", [("192.0.2.2", "node-a"), ("192.0.2.3", "node-b")]))
            """)
        lab.startAll()
        let applier = lab.appliers[0]
        #expect(await lab.eventually { !applier.scripts.isEmpty })
        let first = try #require(applier.scripts.first)
        #expect(first.hasPrefix("add table inet metalvip\ndelete table inet metalvip\n"), "replaces a predecessor's table: \(first)")
        #expect(first.contains("192.0.2.2 . 8080") && first.contains("192.0.2.3 . 8080"), "\(first)")
        #expect(applier.updates.withLock { $0.first }?.state.rules.allSatisfy(\.masquerade) == true, "Cluster masquerades")
        // Every node programs the VIP, owner or not: a takeover needs no rule change.
        #expect(await lab.eventually { lab.appliers.allSatisfy { $0.scripts.first?.contains("192.0.2.10") == true } })
        let before = applier.scripts.count
        try await lab.apply(slice("web", [("192.0.2.2", "node-a"), ("192.0.2.4", "node-c")]))
        #expect(await lab.eventually { applier.scripts.count > before })
        let update = try #require(applier.updates.withLock { $0.last })
        #expect(!update.script.contains("delete table"), "an update, not a replacement: \(update.script)")
        #expect(update.changedServices == 1)
        #expect(update.script.contains("192.0.2.4 . 8080") && !update.script.contains("192.0.2.3"), "\(update.script)")
        // Nothing changes: no transaction (the resync and claim traffic must not rewrite rules).
        let settled = applier.scripts.count
        try await Task.sleep(for: .milliseconds(500))
        #expect(applier.scripts.count == settled)
        await lab.stopAll()
        #expect(applier.scripts.last == ForwardingState.removal().script)
    }

    @Test func aLocalServiceIsAnnouncedOnlyWhereItHasAnEndpointAndMovesWithIt() async throws {
        let lab = try await DataPathLab("""
            apiVersion: v1
            kind: Service
            metadata: {name: web, annotations: {metallb.io/loadBalancerIPs: 192.0.2.10}}
            spec: {type: LoadBalancer, externalTrafficPolicy: Local, ports: [{port: 80}]}
            ---
            \(slice("web", [("192.0.2.3", "node-b")]))
            """)
        lab.startAll()
        #expect(await lab.settledOwner(vip) == 1)
        try await lab.apply(slice("web", [("192.0.2.4", "node-c")]))
        #expect(await lab.eventually { lab.answering(self.vip) == [2] })
        #expect(await lab.settledOwner(vip) == 2)
        // Local keeps the client's address: the owner's rule forwards to its own endpoint, unmasqueraded.
        let rule = try #require(lab.appliers[2].updates.withLock { $0.last }?.state.rules.first { $0.port == 80 })
        #expect(rule.backends.map(\.description) == ["192.0.2.4:8080"] && !rule.masquerade, "\(rule)")
        await lab.stopAll()
    }

    @Test func aNodeWhoseLocalEndpointsFailTheirChecksGivesTheVIPUp() async throws {
        let lab = try await DataPathLab("""
            apiVersion: v1
            kind: Service
            metadata:
              name: web
              annotations: {metallb.io/loadBalancerIPs: 192.0.2.10, metalvip.io/health-check: tcp,
                            metalvip.io/health-check-interval: 100ms, metalvip.io/health-check-timeout: 50ms}
            spec: {type: LoadBalancer, externalTrafficPolicy: Local, ports: [{port: 80}]}
            ---
            \(slice("web", [("192.0.2.2", "node-a"), ("192.0.2.3", "node-b"), ("192.0.2.4", "node-c")]))
            """)
        lab.startAll()
        let owner = try #require(await lab.settledOwner(vip))
        // Under Local each node checks its own endpoint, and only it.
        #expect(await lab.eventually { lab.probers.indices.allSatisfy { lab.probers[$0].probed.withLock { $0 } == [IPAddress("192.0.2.\($0 + 2)")!] } })
        lab.probers[owner].failing.withLock { _ = $0.insert(IPAddress("192.0.2.\(owner + 2)")!) }
        #expect(await lab.eventually(.seconds(5)) { !lab.answering(self.vip).isEmpty && !lab.answering(self.vip).contains(owner) },
                "the VIP left the node whose local endpoint failed")
        // Back to health: the preferred node may take it back, never with two answering.
        lab.probers[owner].failing.withLock { $0.removeAll() }
        #expect(await lab.settledOwner(vip) == owner)
        await lab.stopAll()
    }

    @Test func clusterChecksRunOnTheOwnerAndTheNextInLineOnlyAndTakeFailingEndpointsOut() async throws {
        let lab = try await DataPathLab("""
            apiVersion: v1
            kind: Service
            metadata:
              name: web
              annotations: {metallb.io/loadBalancerIPs: 192.0.2.10, metalvip.io/health-check: "http:/health",
                            metalvip.io/health-check-interval: 100ms, metalvip.io/health-check-timeout: 50ms}
            spec: {type: LoadBalancer, ports: [{port: 80}]}
            ---
            \(slice("web", [("192.0.2.2", "node-a"), ("192.0.2.3", "node-b"), ("192.0.2.4", "node-c")]))
            """)
        lab.startAll()
        let owner = try #require(await lab.settledOwner(vip))
        try await Task.sleep(for: .milliseconds(500))
        let ranked = Rendezvous.rank(lab.names, for: vip).compactMap { lab.names.firstIndex(of: $0) }
        #expect(ranked[0] == owner)
        for index in lab.names.indices {
            let probed = lab.probers[index].probed.withLock { $0 }
            #expect(probed.count == (ranked.prefix(2).contains(index) ? 3 : 0), "\(lab.names[index]) probed \(probed)")
        }
        // A failing endpoint leaves the owner's rules; the others stay.
        let bad = IPAddress("192.0.2.3")!
        for prober in lab.probers { prober.failing.withLock { _ = $0.insert(bad) } }
        #expect(await lab.eventually(.seconds(5)) {
            lab.appliers[owner].scripts.last.map { !$0.contains("192.0.2.3 . 8080") && $0.contains("192.0.2.2 . 8080") } == true
        })
        // The change is an event on the service, naming the endpoint and the node that saw it.
        #expect(await lab.eventually(.seconds(5)) {
            let record = try? await lab.store.get(Keyspace.events(of: ObjectKey(.service, namespace: "default", name: "web")))
            let events = record.flatMap { try? RecordCoding.decode(ServiceEvents.self, from: $0.value) }?.events ?? []
            return events.contains { $0.reason == .endpointUnhealthy && $0.message.contains("192.0.2.3:8080") }
        })
        await lab.stopAll()
    }
}
