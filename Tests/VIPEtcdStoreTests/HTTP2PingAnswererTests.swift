import NIOCore
import NIOEmbedded
import Testing
@testable import VIPEtcdStore

@Suite struct HTTP2PingAnswererTests {
    static func frame(type: UInt8, flags: UInt8 = 0, stream: UInt8 = 0, payload: [UInt8]) -> [UInt8] {
        [0, UInt8(payload.count >> 8), UInt8(payload.count & 0xff), type, flags, 0, 0, 0, stream] + payload
    }

    /// Whatever way the bytes are cut, pings are answered in order with their own payload, and every other
    /// frame (a ping's ACK, and a malformed ping on a stream, included) reaches HTTP/2 byte for byte.
    @Test func pingsAreAnsweredAndEveryOtherFramePassesWhole() throws {
        let settings = Self.frame(type: 4, payload: [0, 3, 0, 0, 0, 100])
        let windowUpdate = Self.frame(type: 8, payload: [0, 0, 0x36, 0x8e])
        let ping1 = Self.frame(type: 6, payload: [2, 4, 16, 16, 9, 14, 7, 7])
        let data = Self.frame(type: 0, flags: 1, stream: 1, payload: Array(0..<200).map { UInt8($0) })
        let pingAck = Self.frame(type: 6, flags: 1, payload: [1, 1, 1, 1, 1, 1, 1, 1])
        let ping2 = Self.frame(type: 6, payload: [9, 8, 7, 6, 5, 4, 3, 2])
        let pingOnAStream = Self.frame(type: 6, stream: 3, payload: [5, 5, 5, 5, 5, 5, 5, 5])
        let wire = settings + windowUpdate + ping1 + data + pingAck + pingOnAStream + ping2
        let passed = settings + windowUpdate + data + pingAck + pingOnAStream
        let answers = Self.frame(type: 6, flags: 1, payload: [2, 4, 16, 16, 9, 14, 7, 7])
            + Self.frame(type: 6, flags: 1, payload: [9, 8, 7, 6, 5, 4, 3, 2])

        for cut in [1, 2, 5, 9, 10, 17, 64, wire.count] {
            let channel = EmbeddedChannel(handler: HTTP2PingAnswerer())
            var offset = 0
            while offset < wire.count {
                let piece = Array(wire[offset..<min(offset + cut, wire.count)])
                try channel.writeInbound(channel.allocator.buffer(bytes: piece))
                offset += cut
            }
            var received: [UInt8] = []
            while var part = try channel.readInbound(as: ByteBuffer.self) { received += part.readBytes(length: part.readableBytes) ?? [] }
            var sent: [UInt8] = []
            while var part = try channel.readOutbound(as: ByteBuffer.self) { sent += part.readBytes(length: part.readableBytes) ?? [] }
            #expect(received == passed, "cut \(cut)")
            #expect(sent == answers, "cut \(cut)")
            #expect(try channel.finish().isClean)
        }
    }
}
