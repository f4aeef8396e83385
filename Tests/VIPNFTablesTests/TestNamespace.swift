#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Testing
import VIPLabHarness
import VIPLink
import VIPNFTables

/// Every test here changes nftables in namespaces: one at a time, each bounded.
@Suite(.serialized, .timeLimit(.minutes(2)))
enum NFTablesNamespaceTests {}

/// A network namespace made for one test: `mvnft<pid>x<serial>`, so concurrent runs never collide and stale
/// ones from a crashed run can be recognised by their dead pid. Nothing here touches the host namespace.
final class TestNamespace: Sendable {
    static let prefix = "mvnft"
    private static let counter = Atomic<Int>(0)

    let name: String

    private init(name: String) { self.name = name }

    struct CommandFailed: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a command to completion; throws with its output on a non-zero exit.
    @discardableResult
    static func run(_ arguments: [String]) async throws -> String {
        let result = try await LANLab.shell(arguments)
        guard result.status == 0 else {
            throw CommandFailed(description: "\(arguments.joined(separator: " ")): exit \(result.status): \(result.output)")
        }
        return result.output
    }

    /// `ip netns exec NAME ARGS`.
    @discardableResult
    func exec(_ arguments: String...) async throws -> String {
        try await Self.run(["ip", "netns", "exec", name] + arguments)
    }

    /// `nft list ruleset` inside the namespace: the independent oracle for what NFTables programmed.
    func ruleset() async throws -> String { try await exec("nft", "list", "ruleset") }

    func remove() async {
        _ = try? await LANLab.shell(["ip", "netns", "delete", name])
    }

    /// Creates `count` namespaces, runs `body`, and deletes them whether `body` throws or not.
    static func with<T: Sendable>(_ count: Int = 1, _ body: ([TestNamespace]) async throws -> T) async throws -> T {
        #expect(getuid() == 0, "VIPNFTables tests must run as root (they create network namespaces)")
        try #require(getuid() == 0)
        await removeStale()
        var made: [TestNamespace] = []
        do {
            for _ in 0..<count {
                let serial = counter.add(1, ordering: .relaxed).newValue
                let namespace = TestNamespace(name: "\(prefix)\(getpid())x\(serial)")
                try await run(["ip", "netns", "add", namespace.name])
                made.append(namespace)
                try await namespace.exec("ip", "link", "set", "lo", "up")
            }
            let result = try await body(made)
            for namespace in made { await namespace.remove() }
            return result
        } catch {
            for namespace in made { await namespace.remove() }
            throw error
        }
    }

    /// Namespaces with our prefix whose owning pid is gone (a crashed earlier run).
    static func removeStale() async {
        guard let listing = try? await run(["ip", "netns", "list"]) else { return }
        for line in listing.split(separator: "\n") {
            guard let name = line.split(separator: " ").first, name.hasPrefix(prefix) else { continue }
            let digits = name.dropFirst(prefix.count).prefix { $0.isNumber }
            guard let pid = Int32(digits), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            _ = try? await LANLab.shell(["ip", "netns", "delete", String(name)])
        }
    }

    /// A libnftables context whose netlink socket lives in this namespace, checked before it is handed out:
    /// a table added by `nft` inside the namespace must be visible to it from this (host-namespace) thread.
    func context() async throws -> NFTablesContext {
        let context = try NetworkNamespace.run(name) { try NFTablesContext() }
        try await exec("nft", "add", "table", "inet", "mvnftsentinel")
        try context.run("list table inet mvnftsentinel")
        try await exec("nft", "delete", "table", "inet", "mvnftsentinel")
        return context
    }
}
