import Testing
import VIPFileStore
import VIPStore
import VIPStoreConformance

/// The shared conformance suite against the file store, each case in its own directory.
@Test(arguments: StoreConformance.allCases)
func fileStoreConformance(_ conformance: StoreConformance) async throws {
    try await TemporaryDirectory.with { directory in
        try await conformance.run(ConformanceBackend(make: { try FileStore(directory: directory) }))
    }
}
