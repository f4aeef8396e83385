import Foundation
import NIOCore
import NIOPosix
import VIPModel

/// Checks endpoints over the network: TCP connect, or an HTTP GET whose status line decides.
///
/// Built on swift-nio's event loops, so a check waiting on a silent endpoint holds a registered socket,
/// never a concurrency-pool thread; the connect timeout and an overall deadline bound every check.
public struct NetworkProber: HealthProber {
    private let group: any EventLoopGroup

    /// The first line of a response longer than this is not HTTP.
    static let statusLineLimit = 1024

    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.group = group
    }

    /// The exact request an HTTP check sends; `Connection: close` so the server frees the connection at once.
    public static func request(path: String, endpoint: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: \(endpoint)\r\nConnection: close\r\nUser-Agent: metalvip-health\r\n\r\n"
    }

    public func probe(_ target: HealthTarget) async -> ProbeOutcome {
        let address: SocketAddress
        do {
            address = try SocketAddress(ipAddress: target.address.description, port: target.port)
        } catch {
            return .failed("cannot connect to \(target.endpoint): \(error)")
        }
        let limit = target.spec.timeout
        let timeout = TimeAmount.nanoseconds(Self.nanoseconds(limit))
        let loop = group.next()
        // Completed once: by the status line, a connect error, the peer closing, or the deadline, whichever
        // comes first (later completions of an EventLoopPromise are ignored).
        let outcome = loop.makePromise(of: ProbeOutcome.self)
        let deadline = loop.scheduleTask(in: timeout) { outcome.succeed(.timedOut(limit)) }
        let request: String?
        if case .http(let path) = target.spec.kind {
            request = Self.request(path: path, endpoint: target.endpoint)
        } else {
            request = nil
        }
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                guard let request else { return channel.eventLoop.makeSucceededVoidFuture() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(StatusLineReader(request: request, limit: limit, outcome: outcome))
                }
            }
        bootstrap.connect(to: address).whenComplete { result in
            switch result {
            case .success(let channel):
                if request == nil { outcome.succeed(.healthy("connected")) }
                // Whatever completes the check, the connection goes with it.
                outcome.futureResult.whenComplete { _ in channel.close(promise: nil) }
            case .failure(let error):
                outcome.succeed(Self.outcome(of: error, limit: limit))
            }
        }
        let result = (try? await outcome.futureResult.get()) ?? .failed("check of \(target.endpoint) ended without a result")
        deadline.cancel()
        return result
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    static func outcome(of error: any Error, limit: Duration) -> ProbeOutcome {
        if let error = error as? IOError {
            if error.errnoCode == ECONNREFUSED { return .refused }
            if error.errnoCode == ETIMEDOUT { return .timedOut(limit) }
            return .failed(String(cString: strerror(error.errnoCode)).lowercased())
        }
        if let error = error as? ChannelError, case .connectTimeout = error { return .timedOut(limit) }
        return .failed("\(error)")
    }

    /// `HTTP/1.1 503 Service Unavailable` -> the outcome it means; 2xx and 3xx are healthy.
    static func outcome(ofStatusLine line: String) -> ProbeOutcome {
        let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), parts[1].count == 3,
              parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let code = Int(parts[1]) else {
            return .failed("malformed HTTP status line \"\(line.prefix(80))\"")
        }
        return (200...399).contains(code) ? .healthy("HTTP \(code)") : .httpStatus(code)
    }
}

/// Sends the request once connected and completes the check with the first line of the answer.
/// Lives on its channel's event loop only.
final class StatusLineReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: String
    private let limit: Duration
    private let outcome: EventLoopPromise<ProbeOutcome>
    private var received: [UInt8] = []

    init(request: String, limit: Duration, outcome: EventLoopPromise<ProbeOutcome>) {
        self.request = request
        self.limit = limit
        self.outcome = outcome
    }

    func channelActive(context: ChannelHandlerContext) {
        let buffer = context.channel.allocator.buffer(string: request)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        received.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
        if let end = received.firstIndex(of: UInt8(ascii: "\n")) {
            var line = received[..<end]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            outcome.succeed(NetworkProber.outcome(ofStatusLine: String(decoding: line, as: UTF8.self)))
        } else if received.count > NetworkProber.statusLineLimit {
            outcome.succeed(.failed("no HTTP status line in the first \(NetworkProber.statusLineLimit) bytes"))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        outcome.succeed(.failed("connection closed before an HTTP status line"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        outcome.succeed(NetworkProber.outcome(of: error, limit: limit))
        context.close(promise: nil)
    }
}
