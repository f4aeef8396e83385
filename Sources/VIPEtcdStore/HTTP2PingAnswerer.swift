import NIOCore

/// Acknowledges the member's HTTP/2 PING frames itself, before swift-nio-http2 sees them, and passes every
/// other frame on unchanged.
///
/// Why: etcd's gRPC server (grpc-go) sends a PING with nearly every request it reads, to size its
/// flow-control window (BDP estimation). swift-nio-http2 1.46 closes a connection that receives more than
/// 200 PING or SETTINGS frames in 30 s (a flood guard that grpc-swift does not let us configure). A speaker
/// renews 20 times a second, so its connection, and every watch on it, dropped every few seconds.
///
/// It sits between TLS and the HTTP/2 handler, where the inbound bytes are whole HTTP/2 frames from the
/// first (a client receives no preface). Frames are forwarded whole; an incomplete one waits for its rest.
/// An answer is written between frames, never inside one, as the event loop runs one handler at a time.
final class HTTP2PingAnswerer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let frameHeaderSize = 9
    static let pingType: UInt8 = 6
    static let ackFlag: UInt8 = 1
    static let pingPayloadSize = 8

    /// The start of a frame whose end has not arrived yet.
    private var held: ByteBuffer?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        if var earlier = held {
            earlier.writeBuffer(&input)
            input = earlier
            held = nil
        }
        var forwardFrom = input.readerIndex
        var cursor = input.readerIndex
        while input.writerIndex - cursor >= Self.frameHeaderSize {
            guard let header = input.getBytes(at: cursor, length: Self.frameHeaderSize) else { break }
            let length = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
            let end = cursor + Self.frameHeaderSize + length
            guard end <= input.writerIndex else { break }
            // Only a well-formed PING (stream 0, 8 bytes) is answered here; a malformed one goes on, for
            // the HTTP/2 handler to refuse as it would have.
            if header[3] == Self.pingType, header[4] & Self.ackFlag == 0, length == Self.pingPayloadSize,
               header[5] & 0x7f == 0, header[6] == 0, header[7] == 0, header[8] == 0,
               let payload = input.getSlice(at: cursor + Self.frameHeaderSize, length: length) {
                if cursor > forwardFrom, let frames = input.getSlice(at: forwardFrom, length: cursor - forwardFrom) {
                    context.fireChannelRead(wrapInboundOut(frames))
                }
                answer(payload, context: context)
                forwardFrom = end
            }
            cursor = end
        }
        if cursor > forwardFrom, let frames = input.getSlice(at: forwardFrom, length: cursor - forwardFrom) {
            context.fireChannelRead(wrapInboundOut(frames))
        }
        if cursor < input.writerIndex {
            held = input.getSlice(at: cursor, length: input.writerIndex - cursor)
        }
    }

    /// PING with the ACK flag on stream 0, echoing the payload (RFC 9113 §6.7).
    private func answer(_ payload: ByteBuffer, context: ChannelHandlerContext) {
        var ack = context.channel.allocator.buffer(capacity: Self.frameHeaderSize + Self.pingPayloadSize)
        ack.writeBytes([0, 0, UInt8(Self.pingPayloadSize), Self.pingType, Self.ackFlag, 0, 0, 0, 0])
        ack.writeImmutableBuffer(payload)
        context.writeAndFlush(wrapOutboundOut(ack), promise: nil)
    }
}
