import Foundation
import Glibc

/// What `curl` saw: the HTTP status, curl's exit code, the body and the time the transfer took.
public struct CurlResponse: Sendable, Hashable {
    /// The HTTP status; 0 when no response came (then `exitCode` says why).
    public var status: Int
    /// curl's exit code: 0, or 7 (refused), 28 (timed out), 52 (empty reply), 56 (reset), ...
    public var exitCode: Int32
    public var body: String
    /// curl's `time_total`: from the start to the end of the transfer, as an HTTP client saw it.
    public var time: Duration
}

/// Backends on the nodes and a real HTTP client on the client namespace, for the data-path tests and the demo.
extension LANLab {
    /// Node K's addresses on the LAN, as Tools/lab gives them: 192.0.2.(1+K) and 2001:db8::(1+K).
    public static func nodeIPv4(_ node: Int) -> String { "192.0.2.\(1 + node)" }
    public static func nodeIPv6(_ node: Int) -> String { "2001:db8::\(1 + node)" }

    /// The process name of a node's backend, for `process(_:)` and `log(_:)`.
    public static func backendName(node: Int, port: Int) -> String { "backend-n\(node)-\(port)" }

    /// Runs `metalvip-lab serve` in node K's namespace on its IPv4 and IPv6 addresses, answering with the
    /// name `nK`, and returns once both sockets are bound. It is killed with the lab, and exits by itself
    /// after `duration` in any case.
    public func startBackend(node: Int, port: Int = 8080, duration: Duration = .seconds(600)) async throws {
        let name = Self.backendName(node: node, port: port)
        try start(name, namespace: "\(prefix)n\(node)",
                  [lab, "serve", "--name", "n\(node)", "--listen", "\(Self.nodeIPv4(node)):\(port)",
                   "--listen", "[\(Self.nodeIPv6(node))]:\(port)",
                   "--duration-ms", String(Int(duration / .milliseconds(1)))])
        for _ in 0..<200 {
            if log(name).contains("serving n\(node) on") { return }
            guard process(name)?.isRunning == true else { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw LabError("backend on node \(node) port \(port) did not start: \(log(name))")
    }

    /// Kills node K's backend (as a crashed server) and waits until it is gone; `startBackend` brings it back.
    public func stopBackend(node: Int, port: Int = 8080) async throws {
        guard let process = process(Self.backendName(node: node, port: port)), process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        for _ in 0..<200 where process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        if process.isRunning { throw LabError("backend on node \(node) port \(port) did not exit after SIGKILL") }
    }

    /// One request with the real `curl`, from the client namespace (source 192.0.2.1 or 2001:db8::1), or from
    /// node K's with `from: K`, on a new connection. IPv6 literals go in brackets (`http://[2001:db8::2]:8080/`).
    /// A failure to connect is not thrown: it is the answer (`exitCode`), so tests can check for a reset or a timeout.
    public func curl(_ url: String, from node: Int? = nil, timeout: Duration = .seconds(2),
                     arguments: [String] = []) async throws -> CurlResponse {
        let marker = "\n@@curl "
        let namespace = node.map { "\(prefix)n\($0)" } ?? "\(prefix)c"
        let result = try await Self.shell(["ip", "netns", "exec", namespace, "curl", "--silent", "--globoff",
                                           "--noproxy", "*", "--max-time", String(format: "%.3f", timeout / .seconds(1)),
                                           "--write-out", "\(marker)%{http_code} %{time_total}"] + arguments + [url])
        guard let range = result.output.range(of: marker, options: .backwards) else {
            throw LabError("curl \(url): unexpected output (status \(result.status)): \(result.output)")
        }
        let fields = result.output[range.upperBound...].split(separator: " ")
        guard fields.count == 2, let status = Int(fields[0]), let total = Double(fields[1].trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw LabError("curl \(url): unexpected --write-out \(result.output[range.upperBound...])")
        }
        return CurlResponse(status: status, exitCode: result.status, body: String(result.output[..<range.lowerBound]),
                            time: .nanoseconds(Int64(total * 1e9)))
    }
}
