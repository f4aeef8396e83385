import Foundation
import Testing
import VIPSQLiteStore
import VIPStore
import VIPStoreConformance

/// The shared conformance suite against the SQLite store, each case in its own directory.
@Test(arguments: StoreConformance.allCases)
func sqliteStoreConformance(_ conformance: StoreConformance) async throws {
    try await TemporaryDirectory.with { directory in
        try await conformance.run(ConformanceBackend(make: { try SQLiteStore(directory: directory) }))
    }
}

/// A fresh directory under /tmp for one test, removed afterwards whatever the outcome.
enum TemporaryDirectory {
    static func with<T>(_ body: (String) async throws -> T) async throws -> T {
        let path = NSTemporaryDirectory() + "vipsqlitestore-\(getpid())-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await body(path)
    }
}
