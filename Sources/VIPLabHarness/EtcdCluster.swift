import Foundation
import Glibc
import Synchronization

/// Real etcd members (Debian's `etcd-server`) for tests and the bench: on loopback with ports the kernel
/// picks, or one member per namespace of a namespace LAN. Each cluster has its own data directories,
/// and everything it started is killed and removed when it goes, pass or fail.
public final class EtcdCluster: @unchecked Sendable {
    public struct Member: Sendable {
        public var name: String
        /// `ip netns exec` target, or nil on loopback in the caller's namespace.
        public var namespace: String?
        public var host: String
        public var clientPort: Int
        public var peerPort: Int
        public var dataDirectory: String
        public var clientEndpoint: String { host.contains(":") ? "[\(host)]:\(clientPort)" : "\(host):\(clientPort)" }
        var peerURL: String { "http://" + (host.contains(":") ? "[\(host)]:\(peerPort)" : "\(host):\(peerPort)") }
    }

    /// Certificates for a cluster that speaks only TLS and wants client certificates (loopback only).
    public struct Certificates: Sendable {
        public var directory: String
        public var ca: String { directory + "/ca.pem" }
        public var serverCertificate: String { directory + "/server.pem" }
        public var serverKey: String { directory + "/server.key" }
        public var clientCertificate: String { directory + "/client.pem" }
        public var clientKey: String { directory + "/client.key" }

        /// A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
        public static func make(in directory: String) async throws -> Certificates {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let certificates = Certificates(directory: directory)
            let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
            let steps: [[String]] = [
                ["openssl", "req", "-x509"] + key + ["-keyout", directory + "/ca.key", "-out", certificates.ca,
                                                      "-days", "2", "-subj", "/CN=metalvip-test-ca"],
                ["openssl", "req"] + key + ["-keyout", certificates.serverKey, "-out", directory + "/server.csr", "-subj", "/CN=etcd"],
                ["openssl", "x509", "-req", "-in", directory + "/server.csr", "-CA", certificates.ca, "-CAkey", directory + "/ca.key",
                 "-CAcreateserial", "-days", "2", "-out", certificates.serverCertificate, "-extfile", directory + "/server.ext"],
                ["openssl", "req"] + key + ["-keyout", certificates.clientKey, "-out", directory + "/client.csr", "-subj", "/CN=metalvip"],
                ["openssl", "x509", "-req", "-in", directory + "/client.csr", "-CA", certificates.ca, "-CAkey", directory + "/ca.key",
                 "-CAcreateserial", "-days", "2", "-out", certificates.clientCertificate, "-extfile", directory + "/client.ext"],
            ]
            try "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
                .write(toFile: directory + "/server.ext", atomically: true, encoding: .utf8)
            try "extendedKeyUsage=clientAuth\n".write(toFile: directory + "/client.ext", atomically: true, encoding: .utf8)
            for step in steps {
                let result = try await LANLab.shell(step)
                guard result.status == 0 else { throw LANLab.LabError("\(step.joined(separator: " ")): \(result.output)") }
            }
            return certificates
        }
    }

    public let members: [Member]
    public let certificates: Certificates?
    /// Raft timing: the test default is faster than etcd's (100 ms / 1 s) so a leader loss costs
    /// a fraction of a second, which is what the leader-kill test measures around.
    public let heartbeatMs: Int
    public let electionMs: Int
    private let token: String
    private let processes = ProcessGroup<Int>()
    static let counter = Atomic<Int>(0)

    /// `etcd://HOST:PORT,...` for `--store`.
    public var url: String { "etcd://" + members.map(\.clientEndpoint).joined(separator: ",") }
    private var clientScheme: String { certificates == nil ? "http" : "https" }

    /// Members on loopback (`namespaces` nil) or one per namespace at the given addresses.
    public init(members count: Int = 1, namespaces: [(namespace: String, address: String)]? = nil,
                heartbeatMs: Int = 50, electionMs: Int = 500, tls: Bool = false) async throws {
        precondition(namespaces == nil || namespaces!.count == count, "one namespace per member")
        precondition(!tls || namespaces == nil, "TLS members run on loopback")
        let serial = Self.counter.add(1, ordering: .relaxed).newValue
        token = "mv\(getpid())x\(serial)"
        self.heartbeatMs = heartbeatMs
        self.electionMs = electionMs
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("metalvip-etcd-\(token)").path
        certificates = tls ? try await Certificates.make(in: base + "/tls") : nil
        var members: [Member] = []
        for index in 0..<count {
            let place = namespaces?[index]
            let ports = place == nil ? try Self.freePorts(2) : [2379, 2380]
            members.append(Member(name: "m\(index + 1)", namespace: place?.namespace, host: place?.address ?? "127.0.0.1",
                                  clientPort: ports[0], peerPort: ports[1], dataDirectory: "\(base)/m\(index + 1)"))
        }
        self.members = members
        for index in members.indices { try start(member: index) }
        try await waitUntilHealthy()
    }

    deinit {
        processes.killAll()
        if let first = members.first {
            try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: first.dataDirectory).deletingLastPathComponent().path)
        }
    }

    /// Starts (or restarts, on its existing data) member `index`.
    public func start(member index: Int) throws {
        let member = members[index]
        try FileManager.default.createDirectory(atPath: member.dataDirectory, withIntermediateDirectories: true)
        let initialCluster = members.map { "\($0.name)=\($0.peerURL)" }.joined(separator: ",")
        let client = "\(clientScheme)://\(member.clientEndpoint)"
        var arguments = [
            "etcd", "--name", member.name, "--data-dir", member.dataDirectory + "/data",
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", member.peerURL, "--initial-advertise-peer-urls", member.peerURL,
            "--initial-cluster", initialCluster, "--initial-cluster-state", "new", "--initial-cluster-token", token,
            "--heartbeat-interval", String(heartbeatMs), "--election-timeout", String(electionMs),
            "--logger", "zap", "--log-outputs", member.dataDirectory + "/etcd.log", "--log-level", "warn",
        ]
        if let certificates {
            arguments += ["--cert-file", certificates.serverCertificate, "--key-file", certificates.serverKey,
                          "--client-cert-auth", "--trusted-ca-file", certificates.ca]
        }
        // etcd writes its own log (--log-outputs) into the member's directory.
        try processes.launch(index, namespace: member.namespace, arguments, output: FileHandle.nullDevice)
    }

    /// `kill -9` on member `index` (its data stays for a restart).
    public func kill(member index: Int) async {
        guard let process = processes.remove(index) else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        await withCheckedContinuation { continuation in
            Thread { process.waitUntilExit(); continuation.resume() }.start()
        }
    }

    public func signal(member index: Int, _ signal: Int32) {
        processes.signal(index, signal)
    }

    /// Runs `etcdctl` against the given members (all by default), from the first member's namespace.
    @discardableResult
    public func etcdctl(_ arguments: [String], members indices: [Int]? = nil) async throws -> String {
        let chosen = (indices ?? Array(members.indices)).map { "\(clientScheme)://\(members[$0].clientEndpoint)" }
        let namespace = indices.flatMap { $0.first.map { members[$0].namespace } } ?? members[0].namespace
        let command = (namespace.map { ["ip", "netns", "exec", $0] } ?? [])
            + ["etcdctl", "--endpoints", chosen.joined(separator: ","), "--dial-timeout", "1s", "--command-timeout", "3s"]
            + (certificates.map { ["--cacert", $0.ca, "--cert", $0.clientCertificate, "--key", $0.clientKey] } ?? [])
            + arguments
        let result = try await LANLab.shell(command)
        guard result.status == 0 else { throw LANLab.LabError("etcdctl \(arguments.joined(separator: " ")): \(result.output)") }
        return result.output
    }

    /// Waits (at most `timeout`) until every running member reports healthy.
    public func waitUntilHealthy(timeout: Duration = .seconds(30)) async throws {
        let running = processes.keys.sorted()
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            do {
                try await etcdctl(["endpoint", "health"], members: running)
                return
            } catch {
                last = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw LANLab.LabError("etcd did not become healthy in \(timeout): \(last)")
    }

    /// The index of the member that leads now, as the members report it.
    public func leader() async throws -> Int? {
        let running = processes.keys.sorted()
        let output = try await etcdctl(["endpoint", "status", "-w", "json"], members: running)
        guard let statuses = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]] else { return nil }
        for status in statuses {
            guard let endpoint = status["Endpoint"] as? String, let body = status["Status"] as? [String: Any],
                  let header = body["header"] as? [String: Any],
                  let member = (header["member_id"] as? NSNumber)?.uint64Value,
                  let leader = (body["leader"] as? NSNumber)?.uint64Value, member == leader else { continue }
            return members.firstIndex { endpoint.hasSuffix($0.clientEndpoint) }
        }
        return nil
    }

    /// Ports nobody listens on now, from the kernel (bind to port 0), for loopback members.
    public static func freePorts(_ count: Int) throws -> [Int] {
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        var ports: [Int] = []
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw LANLab.LabError("socket: \(String(cString: strerror(errno)))") }
            sockets.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                    guard bind(fd, pointer, length) == 0 else { return -1 }
                    return getsockname(fd, pointer, &length)
                }
            }
            guard bound == 0 else { throw LANLab.LabError("bind: \(String(cString: strerror(errno)))") }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        return ports
    }
}
