import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import VIPStore

/// The HTTP connections stores talk to etcd over. A process shares one pool (`shared`). An in-process fleet
/// (the bench's N speakers) gives each speaker its own, as separate processes have: one pool caps its
/// connections per member, and every watch holds one open for as long as it runs.
public final class EtcdConnections: Sendable {
    let client: HTTPClient

    /// The process's pool, never shut down: stores live as long as the process, and a client must not be
    /// dropped unshut.
    public static let shared = EtcdConnections()

    /// A pool of its own; call `shutdown()` once no store uses it any more. Connect failures fail fast
    /// instead of retrying until the deadline.
    public init() {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .milliseconds(500))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        configuration.connectionPool.retryConnectionEstablishment = false
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    public func shutdown() async throws { try await client.shutdown() }
}

/// Sends gateway requests to one member at a time and moves to the next when a member cannot be
/// reached, so a dead member costs one failed connect, not a timeout. Also keeps the auth token.
final class EtcdTransport: Sendable {
    let configuration: EtcdConfiguration
    private let tlsConfiguration: TLSConfiguration?

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

    init(configuration: EtcdConfiguration, connections: EtcdConnections) throws {
        self.configuration = configuration
        self.connections = connections
        tlsConfiguration = try configuration.tls.map(Self.makeTLS)
    }

    var scheme: String { tlsConfiguration == nil ? "http" : "https" }

    var recoveries: UInt64 { state.withLock { $0.recoveries } }

    var currentEndpoint: EtcdConfiguration.Endpoint {
        configuration.endpoints[state.withLock { $0.current } % configuration.endpoints.count]
    }

    /// Sends one unary request. `idempotent` requests are retried on the next member after any
    /// transport failure; others only when the connection was never made (nothing was sent).
    func call<Request: Encodable & Sendable, Response: Decodable>(
        _ path: String, _ body: Request, as: Response.Type, idempotent: Bool
    ) async throws -> Response {
        var lastError: StoreError = .unavailable("etcd: no endpoints")
        var reauthenticated = false
        var attempt = 0
        while attempt < configuration.endpoints.count {
            let index = state.withLock { $0.current }
            let endpoint = configuration.endpoints[index % configuration.endpoints.count]
            do {
                let (status, data) = try await send(path, body, to: endpoint, deadline: configuration.requestTimeout)
                if status == .ok {
                    succeeded()
                    return try decode(Response.self, data, from: endpoint, path: path)
                }
                let failure = EtcdWire.ErrorBody(data, status: status)
                switch failure.code {
                case EtcdWire.ErrorBody.unauthenticated where configuration.credentials != nil && !reauthenticated:
                    // Simple tokens expire (5 minutes by default): fetch a new one and try once more.
                    reauthenticated = true
                    invalidateToken()
                    continue
                case EtcdWire.ErrorBody.unavailable:
                    // No leader, leader changed, request timed out inside etcd: another member may do better.
                    lastError = .unavailable("etcd \(endpoint): \(failure.text)")
                    rotate(from: index)
                    attempt += 1
                    if !idempotent { throw lastError }
                    continue
                default:
                    throw EtcdRequestError(endpoint: endpoint, path: path, body: failure)
                }
            } catch let error as EtcdRequestError {
                throw error
            } catch let error as StoreError {
                throw error
            } catch {
                lastError = .unavailable("etcd \(endpoint): \(Self.describe(error))")
                markFailing()
                rotate(from: index)
                attempt += 1
                if !idempotent && !Self.neverConnected(error) { throw lastError }
            }
        }
        throw lastError
    }

    /// Opens a streaming request (the watch) on the current member; the caller reads the body.
    func stream<Request: Encodable & Sendable>(_ path: String, _ body: Request) async throws -> (HTTPClientResponse, EtcdConfiguration.Endpoint) {
        let index = state.withLock { $0.current }
        let endpoint = configuration.endpoints[index % configuration.endpoints.count]
        do {
            var request = try await makeRequest(path, body, to: endpoint)
            request.headers.add(name: "Accept", value: "application/json")
            let response = try await connections.client.execute(request, deadline: .distantFuture)
            return (response, endpoint)
        } catch let error as StoreError {
            throw error
        } catch {
            markFailing()
            rotate(from: index)
            throw StoreError.unavailable("etcd \(endpoint): \(Self.describe(error))")
        }
    }

    /// Moves on after `index` failed, unless another caller already did.
    func rotate(from index: Int) {
        state.withLock { if $0.current == index { $0.current = index + 1 } }
    }

    func markFailing() { state.withLock { $0.failing = true } }

    /// etcd refused the token (expired, or auth re-enabled): the next request authenticates again.
    func invalidateToken() { state.withLock { $0.token = nil } }

    private func succeeded() {
        state.withLock {
            if $0.failing {
                $0.failing = false
                $0.recoveries &+= 1
            }
        }
    }

    private func send<Request: Encodable & Sendable>(
        _ path: String, _ body: Request, to endpoint: EtcdConfiguration.Endpoint, deadline: Duration,
        authenticated: Bool = true
    ) async throws -> (HTTPResponseStatus, Data) {
        let request = try await makeRequest(path, body, to: endpoint, authenticated: authenticated)
        let response = try await connections.client.execute(request, timeout: .init(deadline))
        let buffer = try await response.body.collect(upTo: 64 << 20)
        return (response.status, Data(buffer.readableBytesView))
    }

    /// A JSON POST to `path`; with the auth token unless it is the request that fetches one.
    private func makeRequest<Request: Encodable & Sendable>(
        _ path: String, _ body: Request, to endpoint: EtcdConfiguration.Endpoint, authenticated: Bool = true
    ) async throws -> HTTPClientRequest {
        var request = HTTPClientRequest(url: "\(scheme)://\(endpoint)\(path)")
        request.method = .POST
        request.tlsConfiguration = tlsConfiguration
        request.headers.add(name: "Content-Type", value: "application/json")
        if authenticated, let token = try await token(for: endpoint) {
            request.headers.add(name: "Authorization", value: token)
        }
        let text = try (body as? HandWrittenJSON)?.json() ?? Array(JSONEncoder().encode(body))
        request.body = .bytes(ByteBuffer(bytes: text))
        return request
    }

    /// The auth token, fetched on first use and after etcd refuses it.
    private func token(for endpoint: EtcdConfiguration.Endpoint) async throws -> String? {
        guard let credentials = configuration.credentials else { return nil }
        if let token = state.withLock({ $0.token }) { return token }
        let (status, data) = try await send("/v3/auth/authenticate",
                                            EtcdWire.AuthenticateRequest(name: credentials.user, password: credentials.password),
                                            to: endpoint, deadline: configuration.requestTimeout, authenticated: false)
        guard status == .ok else {
            throw StoreError.unavailable("etcd \(endpoint): authentication as \(credentials.user) failed: \(EtcdWire.ErrorBody(data, status: status).text)")
        }
        guard let token = try decode(EtcdWire.AuthenticateResponse.self, data, from: endpoint, path: "/v3/auth/authenticate").token else {
            throw StoreError.unavailable("etcd \(endpoint): authentication returned no token (is auth enabled?)")
        }
        state.withLock { $0.token = token }
        return token
    }

    private func decode<Response: Decodable>(_ type: Response.Type, _ data: Data, from endpoint: EtcdConfiguration.Endpoint,
                                             path: String) throws -> Response {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw StoreError.unavailable("etcd \(endpoint)\(path): unreadable answer: \(error)")
        }
    }

    private static func makeTLS(_ tls: EtcdConfiguration.TLS) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        do {
            if let ca = tls.caFile {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
            }
            switch (tls.certificateFile, tls.keyFile) {
            case (let certificate?, let key?):
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            case (nil, nil):
                break
            default:
                throw EtcdConfigurationError.incompleteTLS("a client certificate needs both --etcd-cert and --etcd-key")
            }
        } catch let error as EtcdConfigurationError {
            throw error
        } catch {
            throw EtcdConfigurationError.incompleteTLS("cannot load \([tls.caFile, tls.certificateFile, tls.keyFile].compactMap { $0 }.joined(separator: ", ")): \(error)")
        }
        return configuration
    }

    /// True when the failure happened before a connection existed, so the request cannot have been applied.
    static func neverConnected(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError, error == .connectTimeout { return true }
        if error is NIOConnectionError { return true }
        if let error = error as? IOError, [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH].contains(error.errnoCode) { return true }
        return false
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return "\(error.description)" }
        return "\(error)"
    }
}

/// etcd refused a request for a reason other than reachability: the member, the call and etcd's words.
struct EtcdRequestError: Error, CustomStringConvertible {
    var endpoint: EtcdConfiguration.Endpoint
    var path: String
    var body: EtcdWire.ErrorBody
    var description: String { "etcd \(endpoint)\(path): \(body.text)" }
}
