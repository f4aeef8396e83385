import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import NIOCore
import NIOHTTP2
import NIOSSL
import SwiftProtobuf
import Synchronization
import VIPStore

typealias EtcdClient = GRPCClient<HTTP2ClientTransport.Posix>

/// The gRPC connections stores talk to etcd over: one HTTP/2 connection per member, which every request
/// and watch of the stores using this pool shares. A process shares one pool (`shared`). An in-process
/// fleet (the bench's N speakers) gives each speaker its own, as separate processes have.
public final class EtcdConnections: Sendable {
    /// The process's pool, never shut down: stores live as long as the process.
    public static let shared = EtcdConnections()

    struct Member: Hashable, Sendable {
        var endpoint: EtcdConfiguration.Endpoint
        var tls: EtcdConfiguration.TLS?
    }

    private struct Connection: Sendable {
        let client: EtcdClient
        let running: Task<Void, Never>
    }

    private struct State {
        var connections: [Member: Connection] = [:]
        var closed = false
    }
    private let state = Mutex(State())

    private let connectionsMade = Atomic<Int>(0)

    /// TCP connections made so far, to any member: one per member while nothing fails.
    public var connectionsOpened: Int { connectionsMade.load(ordering: .relaxed) }

    public init() {}

    /// The member's connection, made on first use.
    func client(for member: Member, security: HTTP2ClientTransport.Posix.TransportSecurity) throws -> EtcdClient {
        try state.withLock { state in
            if state.closed { throw StoreError.unavailable("etcd: the connection pool is shut down") }
            if let connection = state.connections[member] { return connection.client }
            var config = HTTP2ClientTransport.Posix.Config.defaults
            // A restarted member is found again within a second; gRPC's default waits up to two minutes.
            config.backoff = .init(initial: .milliseconds(100), max: .seconds(1), multiplier: 1.6, jitter: 0.2)
            // Pings find a connection that died silently (a partition) while a watch waits on it; etcd
            // refuses pings more often than every 5 s, and on a connection with no call open.
            config.connection.keepalive = .init(time: .seconds(10), timeout: .seconds(5), allowWithoutCalls: false)
            config.channelDebuggingCallbacks.onCreateTCPConnection = { [weak self] channel in
                self?.connectionsMade.add(1, ordering: .relaxed)
                return channel.eventLoop.makeCompletedFuture {
                    let http2 = try channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self)
                    try channel.pipeline.syncOperations.addHandler(HTTP2PingAnswerer(), position: .before(http2))
                }
            }
            let transport = try HTTP2ClientTransport.Posix(
                target: Self.target(member.endpoint),
                transportSecurity: security, config: config)
            let client = GRPCClient(transport: transport)
            let running = Task { _ = try? await client.runConnections() }
            state.connections[member] = Connection(client: client, running: running)
            return client
        }
    }

    /// An address literal is connected to as is, and never named in TLS's SNI, which refuses IP addresses;
    /// a name is resolved by DNS and sent as the SNI host.
    private static func target(_ endpoint: EtcdConfiguration.Endpoint) -> any ResolvableTarget {
        let host = endpoint.host
        if host.contains(":") { return .ipv6(address: host, port: endpoint.port) }
        if host.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) { return .ipv4(address: host, port: endpoint.port) }
        return .dns(host: host, port: endpoint.port)
    }

    /// Drops a connection that could not be made, so the next request connects at once instead of
    /// failing until the channel's reconnect backoff ends. Nothing runs on it (it has no connection), so
    /// it stops at once and is not waited for.
    func reset(_ member: Member, ifStill client: EtcdClient) {
        state.withLock { state in
            guard let connection = state.connections[member], connection.client === client else { return }
            state.connections[member] = nil
            connection.client.beginGracefulShutdown()
        }
    }

    /// Closes every connection; call it once no store uses this pool any more.
    public func shutdown() async {
        let running = state.withLock { state in
            state.closed = true
            let connections = state.connections.values
            state.connections = [:]
            for connection in connections { connection.client.beginGracefulShutdown() }
            return connections.map(\.running)
        }
        for task in running { await task.value }
    }
}

/// etcd's gRPC methods that the store calls.
enum EtcdMethod: Sendable {
    static let range = MethodDescriptor(fullyQualifiedService: "etcdserverpb.KV", method: "Range")
    static let txn = MethodDescriptor(fullyQualifiedService: "etcdserverpb.KV", method: "Txn")
    static let compact = MethodDescriptor(fullyQualifiedService: "etcdserverpb.KV", method: "Compact")
    static let watch = MethodDescriptor(fullyQualifiedService: "etcdserverpb.Watch", method: "Watch")
    static let authenticate = MethodDescriptor(fullyQualifiedService: "etcdserverpb.Auth", method: "Authenticate")
}

/// Sends requests to one member at a time and moves to the next when a member cannot be reached, so a
/// dead member costs one failed connect, not a timeout. Also keeps the auth token.
final class EtcdTransport: Sendable {
    let configuration: EtcdConfiguration
    private let security: HTTP2ClientTransport.Posix.TransportSecurity

    private struct State {
        var current = 0
        var token: String?
        /// Bumped when a request succeeds after one failed: watches reconnect then, so a stream that
        /// silently died during a partition does not stay dead after it heals.
        var recoveries: UInt64 = 0
        var failing = false
    }
    private let state = Mutex(State())

    private let connections: EtcdConnections

    /// etcd's answers are bounded by the range page size, not by gRPC's default 4 MiB.
    static let maxMessageBytes = 64 << 20

    init(configuration: EtcdConfiguration, connections: EtcdConnections) throws {
        self.configuration = configuration
        self.connections = connections
        security = try configuration.tls.map(Self.makeTLS) ?? .plaintext
    }

    var recoveries: UInt64 { state.withLock { $0.recoveries } }

    /// Sends one unary request. `idempotent` requests are retried on the next member after any
    /// transport failure; others only when the request never left this process.
    func call<Request: SwiftProtobuf.Message & Sendable, Response: SwiftProtobuf.Message & Sendable>(
        _ method: MethodDescriptor, _ request: Request, as: Response.Type, idempotent: Bool
    ) async throws -> Response {
        var lastError: StoreError = .unavailable("etcd: no endpoints")
        var reauthenticated = false
        var attempt = 0
        while attempt < configuration.endpoints.count {
            let index = state.withLock { $0.current }
            let member = self.member(index)
            do {
                let response = try await onMember(member) { client, metadata in
                    try await unary(method, request, as: Response.self, on: client, metadata: metadata)
                }
                succeeded()
                return response
            } catch let error as RPCError {
                switch error.code {
                case .unauthenticated where configuration.credentials != nil && !reauthenticated:
                    // Simple tokens expire (5 minutes by default): fetch a new one and try once more.
                    reauthenticated = true
                    invalidateToken()
                    continue
                case .unavailable, .deadlineExceeded:
                    // Unreachable, or no leader, leader changed, timed out inside etcd: another member may do better.
                    lastError = .unavailable("etcd \(member.endpoint): \(Self.describe(error))")
                    memberFailed(index)
                    attempt += 1
                    if !idempotent && !Self.neverSent(error) { throw lastError }
                default:
                    throw EtcdRequestError(endpoint: member.endpoint, method: method.method, code: error.code,
                                           message: error.message)
                }
            }
        }
        throw lastError
    }

    /// Opens the watch stream on the current member and hands its responses to `body` until it returns
    /// or the stream ends. The request side stays open until then: etcd ends a watch whose sender closed.
    func watch<Result: Sendable>(
        _ create: Etcdserverpb_WatchRequest,
        _ body: @escaping @Sendable (EtcdConfiguration.Endpoint, RPCAsyncSequence<Etcdserverpb_WatchResponse, any Error>) async throws -> Result
    ) async throws -> Result {
        let index = state.withLock { $0.current }
        let member = self.member(index)
        do {
            return try await onMember(member) { client, metadata in
                let request = StreamingClientRequest(of: Etcdserverpb_WatchRequest.self, metadata: metadata) { writer in
                    try await writer.write(create)
                    // Hold the sending side open for as long as the watch is read.
                    while true { try await Task.sleep(for: .seconds(3600)) }
                }
                return try await client.bidirectionalStreaming(
                    request: request, descriptor: EtcdMethod.watch,
                    serializer: ProtobufSerializer<Etcdserverpb_WatchRequest>(),
                    deserializer: ProtobufDeserializer<Etcdserverpb_WatchResponse>(), options: Self.options(timeout: nil)
                ) { response in
                    try await body(member.endpoint, response.messages)
                }
            }
        } catch let error as RPCError {
            if error.code == .unauthenticated { invalidateToken() }
            if error.code == .unavailable || error.code == .deadlineExceeded { memberFailed(index) }
            throw StoreError.unavailable("etcd \(member.endpoint): \(Self.describe(error))")
        }
    }

    private func member(_ index: Int) -> EtcdConnections.Member {
        .init(endpoint: configuration.endpoints[index % configuration.endpoints.count], tls: configuration.tls)
    }

    /// Runs `body` on the member's connection, with the auth token. A failed connect replaces the
    /// connection, so the next request connects at once instead of after gRPC's reconnect backoff.
    private func onMember<T>(_ member: EtcdConnections.Member,
                             _ body: (EtcdClient, Metadata) async throws -> T) async throws -> T {
        let client = try connections.client(for: member, security: security)
        do {
            return try await body(client, try await metadata(for: member, on: client))
        } catch let error as RPCError where Self.connectFailed(error) {
            connections.reset(member, ifStill: client)
            throw error
        }
    }

    private func unary<Request: SwiftProtobuf.Message & Sendable, Response: SwiftProtobuf.Message & Sendable>(
        _ method: MethodDescriptor, _ request: Request, as: Response.Type, on client: EtcdClient, metadata: Metadata
    ) async throws -> Response {
        try await client.unary(
            request: ClientRequest(message: request, metadata: metadata), descriptor: method,
            serializer: ProtobufSerializer<Request>(), deserializer: ProtobufDeserializer<Response>(),
            options: Self.options(timeout: configuration.requestTimeout)
        ) { try $0.message }
    }

    /// Fail fast on a member with no connection (the caller moves to the next), and take answers as large
    /// as a range page.
    private static func options(timeout: Duration?) -> CallOptions {
        var options = CallOptions.defaults
        options.timeout = timeout
        options.waitForReady = false
        options.maxResponseMessageBytes = maxMessageBytes
        return options
    }

    /// The member at `index` could not serve: requests move to the next one (unless another caller already
    /// did), and watches reconnect once a request gets through again.
    private func memberFailed(_ index: Int) {
        state.withLock {
            $0.failing = true
            if $0.current == index { $0.current = index + 1 }
        }
    }

    /// etcd refused the token (expired, or auth re-enabled): the next request authenticates again.
    private func invalidateToken() { state.withLock { $0.token = nil } }

    private func succeeded() {
        state.withLock {
            if $0.failing {
                $0.failing = false
                $0.recoveries &+= 1
            }
        }
    }

    /// The auth token as etcd reads it (metadata `token`), fetched on first use and after etcd refuses it.
    private func metadata(for member: EtcdConnections.Member, on client: EtcdClient) async throws -> Metadata {
        guard let credentials = configuration.credentials else { return [:] }
        if let token = state.withLock({ $0.token }) { return ["token": .string(token)] }
        var request = Etcdserverpb_AuthenticateRequest()
        request.name = credentials.user
        request.password = credentials.password
        let response: Etcdserverpb_AuthenticateResponse
        do {
            response = try await unary(EtcdMethod.authenticate, request, as: Etcdserverpb_AuthenticateResponse.self,
                                       on: client, metadata: [:])
        } catch let error as RPCError where error.code != .unavailable && error.code != .deadlineExceeded {
            throw StoreError.unavailable("etcd \(member.endpoint): authentication as \(credentials.user) failed: \(error.message)")
        }
        guard !response.token.isEmpty else {
            throw StoreError.unavailable("etcd \(member.endpoint): authentication returned no token (is auth enabled?)")
        }
        state.withLock { $0.token = response.token }
        return ["token": .string(response.token)]
    }

    private static func makeTLS(_ tls: EtcdConfiguration.TLS) throws -> HTTP2ClientTransport.Posix.TransportSecurity {
        do {
            // Read now, so a wrong path fails at start-up with its name rather than at the first connect.
            if let ca = tls.caFile { _ = try NIOSSLCertificate.fromPEMFile(ca) }
            switch (tls.certificateFile, tls.keyFile) {
            case (let certificate?, let key?):
                _ = try NIOSSLCertificate.fromPEMFile(certificate)
                _ = try NIOSSLPrivateKey(file: key, format: .pem)
            case (nil, nil):
                break
            default:
                throw EtcdConfigurationError.incompleteTLS("a client certificate needs both --etcd-cert and --etcd-key")
            }
            return .tls(.init(
                certificateChain: tls.certificateFile.map { [.file(path: $0, format: .pem)] } ?? [],
                privateKey: tls.keyFile.map { .file(path: $0, format: .pem) },
                serverCertificateVerification: .fullVerification,
                trustRoots: tls.caFile.map { .certificates([.file(path: $0, format: .pem)]) } ?? .systemDefault))
        } catch let error as EtcdConfigurationError {
            throw error
        } catch {
            throw EtcdConfigurationError.incompleteTLS("cannot load \([tls.caFile, tls.certificateFile, tls.keyFile].compactMap { $0 }.joined(separator: ", ")): \(error)")
        }
    }

    /// True when the request never reached a member: the channel had no connection to send it on. The
    /// channel says so in its own words; a failure after sending ("connection closed", "stream
    /// unexpectedly closed") or one of etcd's ("etcdserver: ...") does not match.
    static func neverSent(_ error: RPCError) -> Bool {
        guard error.code == .unavailable else { return false }
        let message = error.message
        return connectFailed(error) || message.hasPrefix("Channel isn't ready")
            || message.hasPrefix("subchannel isn't ready") || message.hasPrefix("subchannel is unavailable")
            || message.hasPrefix("Failed to resolve server name")
    }

    /// True when the channel's last attempt to connect failed: it holds no connection, so no stream is
    /// lost by replacing it, and the replacement connects at once instead of after the backoff.
    static func connectFailed(_ error: RPCError) -> Bool {
        error.code == .unavailable && error.message.hasPrefix("Channel is in a transient failure state")
    }

    /// etcd's message, and the channel's cause (a refused connect, a TLS failure) when it gave one.
    static func describe(_ error: RPCError) -> String {
        var text = error.message
        var cause = error.cause
        while let next = cause {
            if let nested = next as? RPCError {
                text += ": \(nested.message)"
                cause = nested.cause
            } else {
                text += ": \(next)"
                cause = nil
            }
        }
        return text
    }
}

/// etcd refused a request for a reason other than reachability: the member, the call and etcd's words.
struct EtcdRequestError: Error, CustomStringConvertible {
    var endpoint: EtcdConfiguration.Endpoint
    var method: String
    var code: RPCError.Code
    var message: String
    var description: String { "etcd \(endpoint) \(method): \(message)" }
}
