import Foundation

/// One request of `metalvip-lab requests`: when it started (monotonic ns), its status (0 when it failed) and body.
public struct RequestRecord: Sendable, Decodable, CustomStringConvertible {
    public var atNs: Int64
    public var ms: Double
    public var status: Int
    public var body: String?
    public var error: String?

    public var description: String { "\(status) \(body ?? error ?? "") in \(ms) ms" }
}

/// The data path from the outside: nftables in a node's namespace, and a client loop of new connections.
extension LANLab {
    /// Runs an nft script (`nft -f -`) in node K's namespace and returns what nft printed; throws when nft fails.
    @discardableResult
    public func nft(node: Int, _ script: String) async throws -> String {
        let result = try await Self.shell(["ip", "netns", "exec", "\(prefix)n\(node)", "nft", "-f", "-"], stdin: script)
        guard result.status == 0 else { throw LabError("nft in n\(node): \(result.output)") }
        return result.output
    }

    /// Starts `metalvip-lab requests` in the client's namespace: `count` GETs, each on a new connection,
    /// `gapMs` apart, each bounded by `timeoutMs`. `finish(requests:)` collects them.
    public func startRequestLoop(address: String, port: Int = 80, path: String = "/", count: Int, gapMs: Int,
                                 timeoutMs: Int) throws -> String {
        let name = "requests-\(UUID().uuidString.prefix(8))"
        try start(name, namespace: "\(prefix)c", [lab, "requests", "--address", address, "--port", String(port), "--path", path,
                                                  "--count", String(count), "--gap-ms", String(gapMs),
                                                  "--timeout-ms", String(timeoutMs)])
        return name
    }

    /// Waits (bounded by the loop's own bounds plus a margin) for a request loop to end, and reads its records.
    public func finish(requests name: String, within limit: Duration = .seconds(120)) async throws -> [RequestRecord] {
        let deadline = ContinuousClock.now + limit
        while let process = process(name), process.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let decoder = JSONDecoder()
        return try log(name).split(separator: "\n").map { try decoder.decode(RequestRecord.self, from: Data($0.utf8)) }
    }
}
