#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import VIPLink
import VIPModel

extension NamespaceTests {
    @Suite struct PacketSocketTests {
        static let requestFilter = "arp and arp[6:2] = 1"

        /// The burst side a sends: two requests, two replies and two UDP datagrams, interleaved.
        struct Burst {
            var requests: [[UInt8]] = []
            var replies: [[UInt8]] = []
            var datagrams: [[UInt8]] = []
            var inOrder: [[UInt8]] = []

            init(from a: MACAddress, to b: MACAddress) {
                for round in UInt8(0)..<2 {
                    let request = Frames.arp(operation: 1, destination: Frames.broadcast, senderMAC: a.bytes,
                                             senderIP: [192, 0, 2, 10 + round], targetMAC: [0, 0, 0, 0, 0, 0],
                                             targetIP: [192, 0, 2, 2])
                    let reply = Frames.arp(operation: 2, destination: b.bytes, senderMAC: a.bytes,
                                           senderIP: [192, 0, 2, 20 + round], targetMAC: b.bytes,
                                           targetIP: [192, 0, 2, 2])
                    let datagram = Frames.udp(destination: b.bytes, source: a.bytes, sourceIP: [192, 0, 2, 1],
                                              destinationIP: [192, 0, 2, 2], payload: Array("probe \(round)".utf8))
                    requests.append(request)
                    replies.append(reply)
                    datagrams.append(datagram)
                    inOrder += [reply, datagram, request]
                }
            }
        }

        @Test(arguments: [PacketSocket.LinkProtocol.arp, .all])
        func kernelFilterPassesOnlyARPRequests(_ linkProtocol: PacketSocket.LinkProtocol) throws {
            let net = try VethPair()
            defer { net.remove() }
            let macA = try net.interface(VethPair.interfaceA, in: net.a).mac
            let macB = try net.interface(VethPair.interfaceB, in: net.b).mac
            let sender = try net.socket(VethPair.interfaceA, in: net.a, .arp, filter: "arp")
            let receiver = try net.socket(VethPair.interfaceB, in: net.b, linkProtocol, filter: Self.requestFilter)

            let burst = Burst(from: macA, to: macB)
            for frame in burst.inOrder { try sender.send(frame) }

            let received = try drain(receiver)
            #expect(received == burst.requests)
            #expect(receiver.kernelDrops() == 0)
        }

        /// Control for the test above: with an accept-all filter the same burst does arrive in full, so it is
        /// the kernel filter, not the veth, that drops replies and datagrams.
        @Test func acceptAllFilterSeesTheWholeBurst() throws {
            let net = try VethPair()
            defer { net.remove() }
            let macA = try net.interface(VethPair.interfaceA, in: net.a).mac
            let macB = try net.interface(VethPair.interfaceB, in: net.b).mac
            let sender = try net.socket(VethPair.interfaceA, in: net.a, .arp, filter: "arp")
            let receiver = try net.socket(VethPair.interfaceB, in: net.b, .all, filter: "")

            let burst = Burst(from: macA, to: macB)
            for frame in burst.inOrder { try sender.send(frame) }

            let received = try drain(receiver)
            #expect(received.filter { burst.inOrder.contains($0) } == burst.inOrder)
        }

        @Test func sendFromBArrivesAtA() throws {
            let net = try VethPair()
            defer { net.remove() }
            let macA = try net.interface(VethPair.interfaceA, in: net.a).mac
            let macB = try net.interface(VethPair.interfaceB, in: net.b).mac
            let listener = try net.socket(VethPair.interfaceA, in: net.a, .arp, filter: "arp")
            let speaker = try net.socket(VethPair.interfaceB, in: net.b, .arp, filter: Self.requestFilter)

            let reply = Frames.arp(operation: 2, destination: macA.bytes, senderMAC: macB.bytes,
                                   senderIP: [192, 0, 2, 2], targetMAC: macA.bytes, targetIP: [192, 0, 2, 1])
            try speaker.send(reply)
            #expect(try drain(listener) == [reply])
            // Bound to ETH_P_ARP, the sender never sees its own frame.
            #expect(try drain(speaker, quiet: .milliseconds(100)).isEmpty)
        }

        @Test func receiveTimesOutWithNil() throws {
            let net = try VethPair()
            defer { net.remove() }
            let socket = try net.socket(VethPair.interfaceB, in: net.b, .arp, filter: Self.requestFilter)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1600, alignment: 8)
            defer { buffer.deallocate() }

            let clock = ContinuousClock()
            let start = clock.now
            let result = try socket.receive(into: buffer, timeout: .milliseconds(200))
            let elapsed = start.duration(to: clock.now)
            #expect(result == nil)
            #expect(elapsed >= .milliseconds(190))
            #expect(elapsed < .seconds(2))
            #expect(try socket.receive(into: buffer, timeout: .zero) == nil)
        }

        @Test func closeIsIdempotentAndLaterCallsNameTheCall() throws {
            let net = try VethPair()
            defer { net.remove() }
            let socket = try net.socket(VethPair.interfaceB, in: net.b, .arp, filter: Self.requestFilter)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
            defer { buffer.deallocate() }

            // A receive in flight on another thread keeps the descriptor until it returns.
            let finished = DispatchSemaphore(value: 0)
            let inFlight = Thread {
                let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
                defer { scratch.deallocate(); finished.signal() }
                _ = try? socket.receive(into: scratch, timeout: .milliseconds(300))
            }
            inFlight.start()
            usleep(50_000)
            socket.close()
            socket.close()
            #expect(finished.wait(timeout: .now() + 5) == .success)

            let error = #expect(throws: LinkError.self) { try socket.receive(into: buffer, timeout: .milliseconds(10)) }
            #expect(error?.operation == "recv")
            #expect(error?.errno == EBADF)
            #expect(error?.interface == VethPair.interfaceB)
            #expect(throws: LinkError.self) { try socket.send(Array(repeating: 0, count: 60)) }
        }

        @Test func bindErrorsNameTheInterfaceAndCall() throws {
            let net = try VethPair()
            defer { net.remove() }
            let filter = try PacketFilter(expression: Self.requestFilter)
            let error = #expect(throws: LinkError.self) {
                try NetworkNamespace.run(net.b) {
                    try PacketSocket(interfaceIndex: 999_999, interfaceName: "nosuch0", protocol: .arp, filter: filter)
                }
            }
            #expect(error?.operation == "bind")
            #expect(error?.interface == "nosuch0")
            #expect(error?.errno == ENODEV)
            #expect(error?.description == "nosuch0 (index 999999): bind: No such device (errno 19)")

            let zero = #expect(throws: LinkError.self) {
                try PacketSocket(interfaceIndex: 0, interfaceName: "any", protocol: .arp, filter: filter)
            }
            #expect(zero?.operation == "bind")
            #expect(zero?.errno == EINVAL)
        }

        @Test func sendRejectsRuntFrames() throws {
            let net = try VethPair()
            defer { net.remove() }
            let socket = try net.socket(VethPair.interfaceB, in: net.b, .arp, filter: Self.requestFilter)
            let error = #expect(throws: LinkError.self) { try socket.send([1, 2, 3]) }
            #expect(error?.operation == "sendto")
            #expect(error?.errno == EINVAL)
        }

        @Test func multicastMembershipFollowsJoinLeaveAndClose() throws {
            let net = try VethPair()
            defer { net.remove() }
            let socket = try net.socket(VethPair.interfaceB, in: net.b, .ipv6, filter: "icmp6")
            let group = try #require(MACAddress("33:33:ff:00:00:01"))
            func listed() throws -> Bool {
                try IPCommand.run("-n", net.b, "maddress", "show", "dev", VethPair.interfaceB).contains("33:33:ff:00:00:01")
            }
            #expect(try !listed())
            try socket.join(multicast: group)
            #expect(try listed())
            try socket.leave(multicast: group)
            #expect(try !listed())
            try socket.join(multicast: group)
            socket.close()
            #expect(try !listed())

            let other = try net.socket(VethPair.interfaceB, in: net.b, .ipv6, filter: "icmp6")
            let unicast = #expect(throws: LinkError.self) { try other.join(multicast: MACAddress(value: 0x0200_0000_0001)) }
            #expect(unicast?.operation == "PACKET_ADD_MEMBERSHIP")
            #expect(unicast?.errno == EINVAL)
        }

        @Test func kernelDropsAccumulateWhenNobodyReads() throws {
            let net = try VethPair()
            defer { net.remove() }
            let macA = try net.interface(VethPair.interfaceA, in: net.a).mac
            let sender = try net.socket(VethPair.interfaceA, in: net.a, .arp, filter: "arp")
            let receiver = try net.socket(VethPair.interfaceB, in: net.b, .arp, filter: Self.requestFilter)
            #expect(receiver.kernelDrops() == 0)

            let request = Frames.arp(operation: 1, destination: Frames.broadcast, senderMAC: macA.bytes,
                                     senderIP: [192, 0, 2, 1], targetMAC: [0, 0, 0, 0, 0, 0], targetIP: [192, 0, 2, 2])
            for _ in 0..<4000 { try sender.send(request) }

            let first = receiver.kernelDrops()
            #expect(first > 0)
            // The kernel resets its counter on every read; ours keeps the total.
            #expect(receiver.kernelDrops() >= first)
        }
    }
}
