import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// What the status endpoints answer.
public struct StatusHandlers: Sendable {
    /// Refreshes state-derived metrics and returns the Prometheus text.
    public var metrics: @Sendable () async -> [UInt8]
    /// nil when ready; otherwise the one-line reason for the 503.
    public var notReady: @Sendable () async -> String?
    /// Whether the process loop is alive.
    public var alive: @Sendable () -> Bool

    public init(metrics: @escaping @Sendable () async -> [UInt8], notReady: @escaping @Sendable () async -> String?,
                alive: @escaping @Sendable () -> Bool) {
        self.metrics = metrics
        self.notReady = notReady
        self.alive = alive
    }
}

public struct StatusServerError: Error, CustomStringConvertible {
    public var description: String
}

/// `GET /metrics`, `/healthz` and `/readyz` over HTTP/1.1, on swift-nio. Small on purpose: one request per
/// connection, answered and closed.
public final class StatusServer: Sendable {
    private let channel: any Channel
    public let address: String

    private init(channel: any Channel, address: String) {
        self.channel = channel
        self.address = address
    }

    /// Binds `host:port` (port 0 picks a free one; `address` tells which).
    public static func start(_ hostPort: String, handlers: StatusHandlers) async throws -> StatusServer {
        guard let colon = hostPort.lastIndex(of: ":"), let port = Int(hostPort[hostPort.index(after: colon)...]) else {
            throw StatusServerError(description: "invalid address \"\(hostPort)\": expected HOST:PORT")
        }
        let host = String(hostPort[..<colon]).trimmingCharacters(in: ["[", "]"])
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(StatusHTTPHandler(handlers: handlers))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            throw StatusServerError(description: "cannot serve metrics on \(hostPort): \(error)")
        }
        let bound = channel.localAddress.map { "\($0.ipAddress ?? host):\($0.port ?? port)" } ?? hostPort
        return StatusServer(channel: channel, address: bound)
    }

    public func stop() async {
        try? await channel.close()
    }
}

/// One HTTP exchange per connection.
final class StatusHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let handlers: StatusHandlers
    private var request: HTTPRequestHead?

    init(handlers: StatusHandlers) { self.handlers = handlers }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): request = head
        case .body: break
        case .end:
            guard let head = request else { return }
            request = nil
            let handlers = handlers
            let promise = context.eventLoop.makePromise(of: (HTTPResponseStatus, String, [UInt8]).self)
            promise.completeWithTask { await Self.respond(to: head, handlers) }
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            promise.futureResult.whenSuccess { status, type, body in
                let context = bound.value
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: type)
                headers.add(name: "Content-Length", value: String(body.count))
                headers.add(name: "Connection", value: "close")
                context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
                              promise: nil)
                context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
                context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
            }
        }
    }

    static func respond(to head: HTTPRequestHead, _ handlers: StatusHandlers) async -> (HTTPResponseStatus, String, [UInt8]) {
        let text = "text/plain; charset=utf-8"
        guard head.method == .GET || head.method == .HEAD else {
            return (.methodNotAllowed, text, Array("only GET\n".utf8))
        }
        switch head.uri.split(separator: "?").first.map(String.init) ?? head.uri {
        case "/metrics":
            return (.ok, "text/plain; version=0.0.4; charset=utf-8", await handlers.metrics())
        case "/healthz":
            return handlers.alive() ? (.ok, text, Array("ok\n".utf8)) : (.serviceUnavailable, text, Array("process loop stopped\n".utf8))
        case "/readyz":
            if let reason = await handlers.notReady() { return (.serviceUnavailable, text, Array((reason + "\n").utf8)) }
            return (.ok, text, Array("ready\n".utf8))
        default:
            return (.notFound, text, Array("not found: try /metrics, /healthz or /readyz\n".utf8))
        }
    }
}
