import Foundation
import VIPLabHarness

/// The servers and load generators of the traffic section, run in the LAN's namespaces through the lab, so the
/// lab kills them and removes their files whatever happens. Each server gets its own config, pid and log files
/// in the lab's work directory; nothing of the host's own configuration is used.
struct TrafficTools {
    let lab: LANLab

    static func address(of node: Int) -> String { "192.0.2.\(1 + node)" }

    func namespace(of node: Int) -> String { "\(lab.prefix)n\(node)" }

    /// nginx on `node`, answering every GET on the node's address and `port` with the node's name, kept-alive
    /// connections unlimited: a real server, so the backend is not what limits the figures. One process
    /// (`master_process off`): forked workers would inherit the pipe Foundation watches for the child's exit, so
    /// killing the master alone would never be seen and the lab's cleanup would wait for it forever.
    func startNginx(node: Int, port: Int) throws {
        let directory = lab.workPath + "/nginx-n\(node)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let config = """
            daemon off;
            master_process off;
            pid \(directory)/nginx.pid;
            error_log \(directory)/error.log warn;
            events { worker_connections 4096; }
            http {
                access_log off;
                client_body_temp_path \(directory)/body;
                proxy_temp_path \(directory)/proxy;
                fastcgi_temp_path \(directory)/fastcgi;
                uwsgi_temp_path \(directory)/uwsgi;
                scgi_temp_path \(directory)/scgi;
                keepalive_requests 10000000;
                server {
                    listen \(Self.address(of: node)):\(port);
                    location / { default_type text/plain; return 200 "n\(node)\\n"; }
                }
            }
            """
        try config.write(toFile: directory + "/nginx.conf", atomically: true, encoding: .utf8)
        // -e: nginx opens its compiled-in error log before it reads the config; keep even that one here.
        try lab.start("nginx-n\(node)", namespace: namespace(of: node),
                      ["nginx", "-p", directory + "/", "-c", directory + "/nginx.conf", "-e", directory + "/error.log"])
    }

    /// `iperf3 -s` on the node's address and `port`.
    func startIperfServer(node: Int, port: Int) throws {
        try lab.start("iperf3-n\(node)", namespace: namespace(of: node),
                      ["iperf3", "-s", "-B", Self.address(of: node), "-p", String(port)])
    }

    /// One TCP relay of HAProxy: the owner's own address and `listenPort` to `backend`:`backendPort`.
    struct Relay {
        var name: String
        var listenPort: Int
        var backend: String
        var backendPort: Int
    }

    /// HAProxy in TCP mode on `node`, in the foreground (`-db`), one listener per relay on the node's own address.
    func startHAProxy(node: Int, relays: [Relay]) throws {
        let path = lab.workPath + "/haproxy-n\(node).cfg"
        let listeners = relays.map { relay in
            """
            listen \(relay.name)
                bind \(Self.address(of: node)):\(relay.listenPort)
                server backend \(relay.backend):\(relay.backendPort)
            """
        }
        let config = """
            global
                maxconn 8192
            defaults
                mode tcp
                timeout connect 2s
                timeout client 60s
                timeout server 60s
            \(listeners.joined(separator: "\n"))

            """
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        try lab.start("haproxy-n\(node)", namespace: namespace(of: node), ["haproxy", "-db", "-f", path])
    }

    /// Runs a client tool in the client's namespace, killed if it outlives `limitSeconds`; its output
    /// (stdout and stderr), or an error naming the command when it fails.
    func client(_ arguments: [String], limitSeconds: Int) async throws -> String {
        let result = try await LANLab.shell(["timeout", "-k", "5", String(limitSeconds), "ip", "netns", "exec", "\(lab.prefix)c"]
                                            + arguments)
        guard result.status == 0 else {
            throw LANLab.LabError("\(arguments.joined(separator: " ")) exited with \(result.status)"
                                  + (result.status == 124 ? " (killed after \(limitSeconds) s)" : "") + ": \(result.output.suffix(400))")
        }
        return result.output
    }

    /// The body of one GET (a new connection, 500 ms at most) from the client, or nil when it did not answer 200.
    func get(_ address: String, port: Int) async throws -> String? {
        let output = try await client([lab.lab, "requests", "--address", address, "--port", String(port), "--count", "1",
                                       "--gap-ms", "0", "--timeout-ms", "500"], limitSeconds: 5)
        guard let line = output.split(separator: "\n").first,
              let record = try? JSONDecoder().decode(RequestRecord.self, from: Data(line.utf8)), record.status == 200 else { return nil }
        return record.body
    }

    /// Waits (bounded) until a GET to `address`:`port` is answered by the backend named `expected`.
    func waitForAnswer(_ address: String, port: Int, from expected: String, timeout: Duration = .seconds(15)) async throws {
        let deadline = ContinuousClock.now + timeout
        var last: String?
        while ContinuousClock.now < deadline {
            last = try await get(address, port: port)
            if last == expected { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw LANLab.LabError("\(address):\(port) did not answer from \(expected) within \(timeout) (last answer: \(last ?? "none"))")
    }

    /// `iperf3 -c` for `seconds` with `streams` parallel streams: bits per second the receiver counted.
    func iperf(_ address: String, port: Int, seconds: Int, streams: Int) async throws -> Double {
        let output = try await client(["iperf3", "-c", address, "-p", String(port), "-t", String(seconds), "-P", String(streams),
                                       "-J", "--connect-timeout", "3000"], limitSeconds: seconds + 20)
        guard let start = output.firstIndex(of: "{"), let end = output.lastIndex(of: "}"),
              let json = try JSONSerialization.jsonObject(with: Data(output[start...end].utf8)) as? [String: Any] else {
            throw LANLab.LabError("iperf3 to \(address):\(port) printed no JSON: \(output.prefix(300))")
        }
        if let error = json["error"] as? String { throw LANLab.LabError("iperf3 to \(address):\(port): \(error)") }
        guard let summary = (json["end"] as? [String: Any])?["sum_received"] as? [String: Any],
              let bits = summary["bits_per_second"] as? Double else {
            throw LANLab.LabError("iperf3 to \(address):\(port): no end.sum_received.bits_per_second in its JSON")
        }
        return bits
    }

    /// What `wrk --latency` reported for one run.
    struct HTTPLoad {
        var requestsPerSecond: Double
        var p50Ms: Double
        var p99Ms: Double
        /// wrk's socket-error and non-2xx lines, when it printed any.
        var errors: [String]
    }

    /// `wrk -t2 -c32 -dNs --latency` to http://address:port/.
    func wrk(_ address: String, port: Int, seconds: Int) async throws -> HTTPLoad {
        let output = try await client(["wrk", "-t2", "-c32", "-d\(seconds)s", "--latency", "http://\(address):\(port)/"],
                                      limitSeconds: seconds + 20)
        return try Self.parseWrk(output, target: "\(address):\(port)")
    }

    static func parseWrk(_ output: String, target: String) throws -> HTTPLoad {
        var rps: Double?, p50: Double?, p99: Double?
        var errors: [String] = []
        for raw in output.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if line.hasPrefix("Requests/sec:"), fields.count == 2 { rps = Double(fields[1]) }
            if fields.count == 2, fields[0] == "50%" { p50 = milliseconds(fields[1]) }
            if fields.count == 2, fields[0] == "99%" { p99 = milliseconds(fields[1]) }
            if line.hasPrefix("Socket errors:") || line.hasPrefix("Non-2xx or 3xx responses:") { errors.append(line) }
        }
        guard let rps, let p50, let p99 else {
            throw LANLab.LabError("wrk to \(target): no Requests/sec or latency distribution in its output: \(output.prefix(400))")
        }
        return HTTPLoad(requestsPerSecond: rps, p50Ms: p50, p99Ms: p99, errors: errors)
    }

    /// wrk's durations: `473.00us`, `3.54ms`, `1.20s`, `2.00m`.
    static func milliseconds(_ text: String) -> Double? {
        for (unit, scale) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)] where text.hasSuffix(unit) {
            return Double(text.dropLast(unit.count)).map { $0 * scale }
        }
        return nil
    }
}
