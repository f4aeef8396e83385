import Foundation
import Testing
import VIPFileStore
import VIPStore

/// Rough throughput figures, run on demand: `MVIP_BENCH=1 swift test --filter benchmark`.
@Test(.enabled(if: ProcessInfo.processInfo.environment["MVIP_BENCH"] != nil))
func benchmarkCommitsAndLists() async throws {
    try await TemporaryDirectory.with { directory in
        let store = try FileStore(directory: directory)
        func rate(_ count: Int, _ body: (Int) async throws -> Void) async throws -> Double {
            let start = ContinuousClock.now
            for index in 0..<count { try await body(index) }
            let elapsed = ContinuousClock.now - start
            return Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
        let volatile = try await rate(5_000) { index in
            try await store.put("leases/node-\(index % 20)", Data("renewal \(index)".utf8), durability: .volatile)
        }
        let durable = try await rate(300) { index in
            try await store.put("services/default/svc-\(index % 50)", Data("spec \(index)".utf8))
        }
        let gets = try await rate(20_000) { index in _ = try await store.get("leases/node-\(index % 20)") }
        for index in 0..<20_000 {
            try await store.put("services/bulk/svc-\(index)", Data("{\"ip\":\"10.0.\(index / 256).\(index % 256)\"}".utf8),
                                durability: .volatile)
        }
        let leaseLists = try await rate(1_000) { _ in _ = try await store.list(prefix: "leases/") }
        let bigList = try await rate(3) { _ in _ = try await store.list(prefix: "services/") }
        print(String(format: "BENCH volatile commits/s %.0f, durable commits/s %.0f, gets/s %.0f, list(leases/ 20 keys beside 20k services)/s %.0f, list(services/ 20k)/s %.2f",
                     volatile, durable, gets, leaseLists, bigList))
    }
}
