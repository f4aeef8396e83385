import Foundation
import Testing
import VIPEtcdStore
import VIPLabHarness
import VIPStore
import VIPStoreConformance

@Suite struct EtcdConfigurationTests {
    @Test func endpointsParse() throws {
        let single = try EtcdConfiguration(url: "etcd://127.0.0.1:2379")
        #expect(single.endpoints == [.init(host: "127.0.0.1", port: 2379)])
        #expect(single.prefix == "/metalvip/")

        let many = try EtcdConfiguration(url: "etcd://192.0.2.241:2379,etcd-2,[2001:db8::1]:23790/", prefix: "/lab/")
        #expect(many.endpoints == [.init(host: "192.0.2.241", port: 2379), .init(host: "etcd-2", port: 2379),
                                   .init(host: "2001:db8::1", port: 23790)])
        #expect(many.endpoints[2].description == "[2001:db8::1]:23790")
        #expect(many.prefix == "/lab/")
    }

    @Test(arguments: [
        ("http://127.0.0.1:2379", "an etcd store is written etcd://HOST:PORT"),
        ("etcd://", "no endpoints"),
        ("etcd://127.0.0.1:0", "endpoint \"127.0.0.1:0\": port must be 1-65535"),
        ("etcd://127.0.0.1:x", "port must be 1-65535"),
        ("etcd://a,,b", "endpoint \"\": missing or invalid host"),
        ("etcd://2001:db8::1:2379", "must be in brackets"),
        ("etcd://[2001:db8::1", "unclosed ["),
    ])
    func badURLsSayWhatIsWrong(url: String, message: String) {
        #expect {
            try EtcdConfiguration(url: url)
        } throws: { error in
            "\(error)".contains(message) && "\(error)".contains(url)
        }
    }

    @Test func badPrefixIsRefused() {
        #expect(throws: EtcdConfigurationError.badPrefix("metalvip")) { try EtcdConfiguration(url: "etcd://h:1", prefix: "metalvip") }
        #expect(throws: EtcdConfigurationError.badPrefix("/a//b/")) { try EtcdConfiguration(url: "etcd://h:1", prefix: "/a//b/") }
    }
}

/// Behaviour of the etcd backend beyond the shared conformance suite, against real etcd on loopback.
@Suite(.serialized) struct EtcdStoreTests {
    static func data(_ text: String) -> Data { Data(text.utf8) }

    @Test func keysLiveUnderThePrefixAndPrefixesAreIsolated() async throws {
        let cluster = try await EtcdCluster()
        let main = try EtcdStore(EtcdConfiguration(url: cluster.url))
        let other = try EtcdStore(EtcdConfiguration(url: cluster.url, prefix: "/other/"))
        try await main.put("services/default/web", Self.data("web"))
        try await other.put("services/default/db", Self.data("db"))

        #expect(try await main.list(prefix: "").records.map(\.key) == ["services/default/web"])
        #expect(try await other.list(prefix: "").records.map(\.key) == ["services/default/db"])
        // What the README documents: the store's keys are etcd keys under the prefix.
        let raw = try await cluster.etcdctl(["get", "--prefix", "/", "--keys-only"])
        #expect(raw.split(separator: "\n").map(String.init).sorted() == ["/metalvip/services/default/web", "/other/services/default/db"])
        #expect(main.name == "etcd:\(cluster.members[0].clientEndpoint)/metalvip/")
    }

    @Test func largeListingsArePagedAtOneRevision() async throws {
        let cluster = try await EtcdCluster()
        let store = try EtcdStore(EtcdConfiguration(url: cluster.url), pageSize: 7)
        var expected: [String] = []
        for index in 0..<50 {
            let key = "assignments/ns/svc-\(String(index, radix: 36))"
            try await store.put(key, Self.data("\(index)"))
            expected.append(key)
        }
        let last = try await store.put("assignmentsX/outside", Self.data("no"))
        let listing = try await store.list(prefix: "assignments/")
        #expect(listing.records.map(\.key) == expected.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        #expect(listing.revision == last)
    }

    @Test func racingWritersLoseNothingAndHoldNothingTwice() async throws {
        let cluster = try await EtcdCluster()
        let configuration = try EtcdConfiguration(url: cluster.url)
        // Eight writers (separate stores, as separate processes would be) race to claim one key.
        let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    let store = try EtcdStore(configuration)
                    do {
                        try await store.put("claims/192.0.2.10", Self.data("n\(writer)"), expecting: .absent)
                        return true
                    } catch StoreError.conflict {
                        return false
                    }
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(winners == 1)

        // Compare-and-swap increments from four writers: every increment lands exactly once.
        let seed = try EtcdStore(configuration)
        try await seed.put("counter", Self.data("0"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let store = try EtcdStore(configuration)
                    for _ in 0..<10 {
                        // Bounded retries: contention among four writers settles well within 100 rounds.
                        for _ in 0..<100 {
                            let current = try #require(try await store.get("counter"))
                            let value = Int(String(decoding: current.value, as: UTF8.self))! + 1
                            do {
                                try await store.put("counter", Self.data("\(value)"), expecting: .modRevision(current.modRevision))
                                break
                            } catch StoreError.conflict {
                                continue
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await seed.get("counter")?.value == Self.data("40"))
    }

    @Test func aTransactionMayNameAKeyTwice() async throws {
        let cluster = try await EtcdCluster()
        let store = try EtcdStore(EtcdConfiguration(url: cluster.url))
        let revision = try await store.commit(Transaction(operations: [
            .put(key: "k", value: Self.data("1")), .delete(key: "k"), .put(key: "k", value: Self.data("2")), .delete(key: "j"),
        ]))
        #expect(try await store.get("k") == Record(key: "k", value: Self.data("2"), createRevision: revision, modRevision: revision))
    }

    @Test func anUnreachableStoreSaysWhichAndHowQuickly() async throws {
        let cluster = try await EtcdCluster()
        let store = try EtcdStore(EtcdConfiguration(url: cluster.url))
        try await store.put("a", Self.data("1"))
        await cluster.kill(member: 0)
        let started = ContinuousClock.now
        await #expect {
            try await store.get("a")
        } throws: { error in
            guard case StoreError.unavailable(let why) = error else { return false }
            return why.contains(cluster.members[0].clientEndpoint)
        }
        #expect(ContinuousClock.now - started < .seconds(3))
        await #expect(throws: StoreError.self) { try await store.ping() }

        try cluster.start(member: 0)
        try await cluster.waitUntilHealthy()
        #expect(try await store.get("a")?.value == Self.data("1"))
        try await store.ping()
    }

    @Test func aDeadMemberIsSkippedForTheNext() async throws {
        let cluster = try await EtcdCluster(members: 3)
        let store = try EtcdStore(EtcdConfiguration(url: cluster.url))
        try await store.put("a", Self.data("1"))
        let probe = WatchProbe(store.watch(prefix: "", after: 0))
        await cluster.kill(member: 0)
        // Bounded: a new leader is elected within a few election timeouts (500 ms here).
        let deadline = ContinuousClock.now + .seconds(10)
        var written: Revision?
        while written == nil, ContinuousClock.now < deadline {
            written = try? await store.put("b", Self.data("2"))
            if written == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let revision = try #require(written)
        #expect(try await store.get("b")?.modRevision == revision)
        // The watch moved to a live member and resumed without a gap.
        #expect(await probe.waitForEvents(2, timeout: .seconds(10)).map(\.key) == ["a", "b"])
    }

    /// etcd pings back on nearly every request (grpc-go's flow-control estimate), and swift-nio-http2
    /// drops a connection after 200 pings in 30 s: 500 requests with a watch open must keep the one
    /// connection, and the watch must see every write.
    @Test func aBusyConnectionOutlivesEtcdsPings() async throws {
        let cluster = try await EtcdCluster()
        let connections = EtcdConnections()
        let store = try EtcdStore(EtcdConfiguration(url: cluster.url), connections: connections)
        let probe = WatchProbe(store.watch(prefix: "", after: 0))
        for index in 0..<500 { try await store.put("k\(index)", Self.data("\(index)")) }
        #expect(await probe.waitForEvents(500, timeout: .seconds(20)).count == 500)
        #expect(connections.connectionsOpened == 1)
        probe.cancel()
        await connections.shutdown()
    }

    @Test func passwordAuthentication() async throws {
        let cluster = try await EtcdCluster()
        try await cluster.etcdctl(["user", "add", "root", "--new-user-password", "s3cret"])
        try await cluster.etcdctl(["auth", "enable"])
        let url = cluster.url

        func signedIn(_ password: String) throws -> EtcdStore {
            var configuration = try EtcdConfiguration(url: url)
            configuration.credentials = .init(user: "root", password: password)
            return try EtcdStore(configuration)
        }
        let store = try signedIn("s3cret")
        try await store.put("a", Self.data("1"))
        #expect(try await store.get("a")?.value == Self.data("1"))
        let probe = WatchProbe(store.watch(prefix: "", after: 0))
        #expect(await probe.waitForEvents(1).map(\.key) == ["a"])

        let anonymous = try EtcdStore(EtcdConfiguration(url: url))
        await #expect { try await anonymous.get("a") } throws: { "\($0)".contains("user name is empty") || "\($0)".contains("authentication") }
        let wrong = try signedIn("nope")
        await #expect { try await wrong.get("a") } throws: { "\($0)".contains("authentication as root failed") }
    }

    @Test func tlsWithClientCertificates() async throws {
        let cluster = try await EtcdCluster(tls: true)
        let certificates = try #require(cluster.certificates)
        func store(_ tls: EtcdConfiguration.TLS?) throws -> EtcdStore {
            var configuration = try EtcdConfiguration(url: cluster.url)
            configuration.tls = tls
            return try EtcdStore(configuration)
        }
        let secure = try store(.init(caFile: certificates.ca, certificateFile: certificates.clientCertificate,
                                     keyFile: certificates.clientKey))
        try await secure.put("a", Self.data("1"))
        #expect(try await secure.get("a")?.value == Self.data("1"))
        let probe = WatchProbe(secure.watch(prefix: "", after: 0))
        #expect(await probe.waitForEvents(1).map(\.key) == ["a"])
        probe.cancel()

        // Without a client certificate the member refuses; without the CA the client refuses the member.
        await #expect(throws: StoreError.self) { try await store(.init(caFile: certificates.ca)).get("a") }
        await #expect(throws: StoreError.self) {
            try await store(.init(certificateFile: certificates.clientCertificate, keyFile: certificates.clientKey)).get("a")
        }
        await #expect(throws: StoreError.self) { try await store(nil).get("a") }
        #expect(throws: EtcdConfigurationError.self) { try store(.init(caFile: "/nonexistent/ca.pem")) }
    }
}
