import Testing
import VIPEtcdStore
import VIPLabHarness
import VIPStore
import VIPStoreConformance

/// The shared conformance suite against etcd: each case on its own single-member etcd on loopback,
/// so revisions and compaction start clean. The interruption is a `kill -9` and restart of etcd.
@Test(arguments: StoreConformance.allCases)
func etcdStoreConformance(_ conformance: StoreConformance) async throws {
    let cluster = try await EtcdCluster()
    try await conformance.run(ConformanceBackend(
        make: { try EtcdStore(EtcdConfiguration(url: cluster.url)) },
        interrupt: {
            await cluster.kill(member: 0)
            try cluster.start(member: 0)
            try await cluster.waitUntilHealthy()
        }))
}
