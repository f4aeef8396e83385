import Foundation

/// A fresh directory under /tmp for one test, removed afterwards whatever the outcome.
enum TemporaryDirectory {
    static func make() throws -> String {
        let path = NSTemporaryDirectory() + "vipfilestore-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func with<T>(_ body: (String) async throws -> T) async throws -> T {
        let path = try make()
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await body(path)
    }
}
