import Foundation

/// Where etcd is and how to talk to it: what `--store etcd://HOST:PORT[,HOST:PORT...]` and the
/// `--etcd-*` options describe.
public struct EtcdConfiguration: Sendable, Hashable {
    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        /// IPv6 literals are bracketed, as in a URL.
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// Client-side TLS: the CA that signed the members' certificates, and an optional client certificate.
    public struct TLS: Sendable, Hashable {
        public var caFile: String?
        public var certificateFile: String?
        public var keyFile: String?
        public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    public struct Credentials: Sendable, Hashable {
        public var user: String
        public var password: String
        public init(user: String, password: String) {
            self.user = user
            self.password = password
        }
    }

    public var endpoints: [Endpoint]
    /// Every key lives under this prefix, so several installations (or other tools) can share one etcd.
    public var prefix: String
    public var tls: TLS?
    public var credentials: Credentials?
    /// How long one request may take before the member counts as unreachable. Short, because a
    /// speaker's renewals must fail fast enough to try another member within its lease.
    public var requestTimeout: Duration
    public var connectTimeout: Duration
    /// The members' `--max-txn-ops`: etcd refuses a transaction with more compares or operations.
    public var maxOperationsPerTransaction: Int = 128

    public static let defaultPrefix = "/metalvip/"

    public init(endpoints: [Endpoint], prefix: String = EtcdConfiguration.defaultPrefix, tls: TLS? = nil,
                credentials: Credentials? = nil, requestTimeout: Duration = .seconds(2),
                connectTimeout: Duration = .milliseconds(500)) {
        self.endpoints = endpoints
        self.prefix = prefix
        self.tls = tls
        self.credentials = credentials
        self.requestTimeout = requestTimeout
        self.connectTimeout = connectTimeout
    }

    /// Parses `etcd://HOST:PORT[,HOST:PORT...]`. A port left out means etcd's 2379.
    public init(url: String, prefix: String = EtcdConfiguration.defaultPrefix) throws(EtcdConfigurationError) {
        let scheme = "etcd://"
        guard url.hasPrefix(scheme) else { throw .notEtcdURL(url) }
        var list = Substring(url.dropFirst(scheme.count))
        if list.hasSuffix("/") { list = list.dropLast() }
        guard !list.isEmpty else { throw .noEndpoints(url) }
        var endpoints: [Endpoint] = []
        for item in list.split(separator: ",", omittingEmptySubsequences: false) {
            endpoints.append(try Self.endpoint(String(item), in: url))
        }
        try self.init(endpoints: endpoints, validatingPrefix: prefix)
    }

    private init(endpoints: [Endpoint], validatingPrefix prefix: String) throws(EtcdConfigurationError) {
        guard prefix.hasPrefix("/"), prefix.hasSuffix("/"), !prefix.contains("//") else {
            throw .badPrefix(prefix)
        }
        self.init(endpoints: endpoints, prefix: prefix)
    }

    public static func isEtcdURL(_ location: String) -> Bool { location.hasPrefix("etcd://") }

    private static func endpoint(_ item: String, in url: String) throws(EtcdConfigurationError) -> Endpoint {
        let host: String
        var portText: Substring?
        if item.hasPrefix("[") {
            guard let close = item.firstIndex(of: "]") else { throw .badEndpoint(item, url: url, reason: "unclosed [") }
            host = String(item[item.index(after: item.startIndex)..<close])
            let rest = item[item.index(after: close)...]
            if !rest.isEmpty {
                guard rest.first == ":" else { throw .badEndpoint(item, url: url, reason: "expected :PORT after ]") }
                portText = rest.dropFirst()
            }
        } else {
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2 else {
                throw .badEndpoint(item, url: url, reason: "an IPv6 address must be in brackets, as [2001:db8::1]:2379")
            }
            host = String(parts[0])
            portText = parts.count == 2 ? parts[1] : nil
        }
        guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || ".-_:%".contains($0) }) else {
            throw .badEndpoint(item, url: url, reason: "missing or invalid host")
        }
        guard let text = portText else { return Endpoint(host: host, port: 2379) }
        guard let port = Int(text), (1...65535).contains(port) else {
            throw .badEndpoint(item, url: url, reason: "port must be 1-65535")
        }
        return Endpoint(host: host, port: port)
    }
}

public enum EtcdConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    case notEtcdURL(String)
    case noEndpoints(String)
    case badEndpoint(String, url: String, reason: String)
    case badPrefix(String)
    case incompleteTLS(String)

    public var description: String {
        switch self {
        case .notEtcdURL(let url): "\(url): an etcd store is written etcd://HOST:PORT[,HOST:PORT...]"
        case .noEndpoints(let url): "\(url): no endpoints; write etcd://HOST:PORT[,HOST:PORT...]"
        case .badEndpoint(let item, let url, let reason): "\(url): endpoint \"\(item)\": \(reason)"
        case .badPrefix(let prefix): "etcd prefix \"\(prefix)\": must start and end with /, as /metalvip/"
        case .incompleteTLS(let why): "etcd TLS: \(why)"
        }
    }
}
