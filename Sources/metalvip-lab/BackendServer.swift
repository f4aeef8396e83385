import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import VIPModel

/// A backend for the namespace LAN: answers with its name (and, on `/whoami`, the client address it saw),
/// so a test or the demo can tell which node served a request and whether the client's source was kept.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A tiny HTTP/1.1 backend: GET answers 200 with NAME, /whoami with NAME CLIENTADDR, /health with ok.")

    @Option(name: .customLong("listen"), help: "ADDR:PORT to listen on (repeatable); IPv6 as [ADDR]:PORT.")
    var listens: [String] = []
    @Option(help: "The name every answer carries (the node's, say n1).") var name: String
    @Option(help: "Exit by itself after this many milliseconds (default 10 minutes), so nothing is left running.")
    var durationMs: Int = 600_000

    func validate() throws {
        if listens.isEmpty { throw ValidationError("give at least one --listen ADDR:PORT") }
        for listen in listens { _ = try ListenAddress(listen) }
        if name.isEmpty || name.contains(where: \.isNewline) { throw ValidationError("--name must be one non-empty line") }
        if durationMs <= 0 { throw ValidationError("--duration-ms must be positive") }
    }

    func run() throws {
        let addresses = try listens.map(ListenAddress.init)
        let server = try BackendServer(name: name, addresses: addresses)
        // One line once every address is bound: the harness waits for it.
        FileHandle.standardOutput.write(Data("serving \(name) on \(server.bound.joined(separator: " "))\n".utf8))
        Thread.sleep(forTimeInterval: Double(durationMs) / 1000)
        server.stop()
    }
}

/// `192.0.2.2:8080` or `[2001:db8::2]:8080`.
struct ListenAddress: CustomStringConvertible {
    var address: IPAddress
    var port: Int

    init(_ text: String) throws {
        let problem = ValidationError("invalid --listen \"\(text)\": expected ADDR:PORT, IPv6 as [ADDR]:PORT")
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.range(of: "]:") else { throw problem }
            host = text[text.index(after: text.startIndex)..<close.lowerBound]
            portText = text[close.upperBound...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw problem }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard let address = IPAddress(String(host)), text.hasPrefix("[") == (address.family == .ipv6),
              let port = Int(portText), (0...65535).contains(port) else { throw problem }
        self.address = address
        self.port = port
    }

    var description: String { address.withPort(port) }
}

struct ServeError: Error, CustomStringConvertible {
    var description: String
}

/// The listening sockets, on swift-nio's shared event loops: many concurrent connections, keep-alive or not.
final class BackendServer {
    private let channels: [any Channel]
    /// What was bound, as `ADDR:PORT` (port 0 resolved).
    let bound: [String]

    init(name: String, addresses: [ListenAddress]) throws {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(BackendHTTPHandler(name: name))
                }
            }
        var channels: [any Channel] = []
        var bound: [String] = []
        for listen in addresses {
            do {
                let channel = try bootstrap.bind(to: try SocketAddress(ipAddress: listen.address.description, port: listen.port)).wait()
                channels.append(channel)
                var actual = listen
                actual.port = channel.localAddress?.port ?? listen.port
                bound.append(actual.description)
            } catch {
                for channel in channels { try? channel.close().wait() }
                throw ServeError(description: "cannot listen on \(listen): \(error)")
            }
        }
        self.channels = channels
        self.bound = bound
    }

    func stop() {
        for channel in channels { try? channel.close().wait() }
    }
}

/// One connection: answers each request in turn (the pipeline handler keeps pipelined requests in order),
/// and closes after the answer when the client asked for `Connection: close` (or spoke HTTP/1.0).
final class BackendHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let name: String
    private var request: HTTPRequestHead?

    init(name: String) { self.name = name }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): request = head
        case .body: break
        case .end:
            guard let head = request else { return }
            request = nil
            let (status, body) = Self.answer(head, name: name, peer: context.channel.remoteAddress?.ipAddress ?? "unknown")
            let keepAlive = head.isKeepAlive
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            if head.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            }
            let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !keepAlive {
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                written.whenComplete { _ in bound.value.close(promise: nil) }
            }
        }
    }

    /// GET (or HEAD) `/whoami`: `NAME CLIENTADDR`; `/health`: `ok`; anything else: `NAME`. Other methods: 405.
    static func answer(_ head: HTTPRequestHead, name: String, peer: String) -> (HTTPResponseStatus, String) {
        guard head.method == .GET || head.method == .HEAD else { return (.methodNotAllowed, "only GET\n") }
        switch head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri {
        case "/whoami": return (.ok, "\(name) \(peer)\n")
        case "/health": return (.ok, "ok\n")
        default: return (.ok, "\(name)\n")
        }
    }
}
