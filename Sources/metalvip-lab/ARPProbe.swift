import CPcap
import Foundation
import Synchronization
import VIPLabHarness
import VIPLink
import VIPModel
import VIPPacket

/// Nanoseconds on a clock.
func clockNanoseconds(_ clock: clockid_t) -> Int64 {
    var spec = timespec()
    clock_gettime(clock, &spec)
    return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
}

struct ProbeError: Error, CustomStringConvertible {
    var description: String
}

/// A libpcap capture of every ARP frame (and, when IPv6 targets are probed, every Neighbor Advertisement)
/// on one interface, with kernel timestamps in nanoseconds, read on its own thread.
final class ARPCapture: @unchecked Sendable {
    private let handle: OpaquePointer
    private let ownMAC: MACAddress
    private let frames = Mutex<[CapturedARP]>([])
    private let stopped = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    /// "arp" alone when only IPv4 is probed, so the ARP probe captures exactly what it always did.
    static func filter(neighborAdvertisements: Bool) -> String {
        neighborAdvertisements ? "arp or (icmp6 and ip6[40] = 136)" : "arp"
    }

    init(interface: String, ownMAC: MACAddress, filter: String = "arp") throws {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_create(interface, &errorBuffer) else {
            let message = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw ProbeError(description: "pcap_create \(interface): \(message)")
        }
        self.handle = handle
        self.ownMAC = ownMAC
        pcap_set_snaplen(handle, 128)
        pcap_set_immediate_mode(handle, 1)
        pcap_set_timeout(handle, 10)
        pcap_set_tstamp_precision(handle, Int32(PCAP_TSTAMP_PRECISION_NANO))
        let status = pcap_activate(handle)
        guard status >= 0 else {
            let message = String(cString: pcap_geterr(handle))
            pcap_close(handle)
            throw ProbeError(description: "pcap_activate \(interface): \(message)")
        }
        var program = bpf_program()
        guard pcap_compile(handle, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0, pcap_setfilter(handle, &program) == 0 else {
            let message = String(cString: pcap_geterr(handle))
            pcap_close(handle)
            throw ProbeError(description: "pcap filter on \(interface): \(message)")
        }
        pcap_freecode(&program)
    }

    func start() {
        let thread = Thread { [self] in
            var header: UnsafeMutablePointer<pcap_pkthdr>?
            var data: UnsafePointer<UInt8>?
            while !stopped.load(ordering: .acquiring) {
                let result = pcap_next_ex(handle, &header, &data)
                guard result == 1, let header, let data else {
                    if result < 0 { break }
                    continue
                }
                let time = Int64(header.pointee.ts.tv_sec) * 1_000_000_000 + Int64(header.pointee.ts.tv_usec)
                record(UnsafeRawBufferPointer(start: data, count: Int(header.pointee.caplen)), realtimeNs: time,
                       deliveredNs: clockNanoseconds(CLOCK_MONOTONIC))
            }
            done.signal()
        }
        thread.start()
    }

    private func record(_ frame: UnsafeRawBufferPointer, realtimeNs: Int64, deliveredNs: Int64) {
        if case .success(let reply) = ARPCodec.parseReply(frame) {
            guard reply.ethernetSource != ownMAC else { return }
            let kind: CapturedARP.Kind = reply.isGratuitous ? .gratuitousReply : (reply.targetMAC == ownMAC ? .reply : .gratuitousReply)
            if kind == .gratuitousReply && !reply.isGratuitous { return }  // a reply to someone else
            frames.withLock { $0.append(CapturedARP(kind: kind, senderIP: reply.senderIP.description,
                                                     senderMAC: reply.senderMAC.description, realtimeNs: realtimeNs,
                                                     deliveredNs: deliveredNs)) }
        } else if case .success(let request) = ARPCodec.parseRequest(frame), request.ethernetSource != ownMAC,
                  request.senderIP == request.targetIP {
            frames.withLock { $0.append(CapturedARP(kind: .gratuitousRequest, senderIP: request.senderIP.description,
                                                     senderMAC: request.senderMAC.description, realtimeNs: realtimeNs,
                                                     deliveredNs: deliveredNs)) }
        } else if case .success(let advertisement) = NDPCodec.parseAdvertisement(frame),
                  advertisement.ethernetSource != ownMAC {
            // A solicited NA to this client answers one of our solicitations, like an ARP reply; an unsolicited
            // one to a group is the IPv6 gratuitous ARP. Solicited NAs to other hosts are theirs.
            let kind: CapturedARP.Kind
            if advertisement.flags.contains(.solicited) {
                guard advertisement.ethernetDestination == ownMAC else { return }
                kind = .reply
            } else {
                guard advertisement.ethernetDestination.isMulticast else { return }
                kind = .unsolicitedAdvertisement
            }
            frames.withLock { $0.append(CapturedARP(
                kind: kind, senderIP: advertisement.targetIP.description,
                senderMAC: advertisement.ethernetSource.description, realtimeNs: realtimeNs, deliveredNs: deliveredNs,
                advertisement: CapturedARP.AdvertisementFields(
                    flags: Self.letters(advertisement.flags),
                    targetLinkLayerAddress: advertisement.targetLinkLayerAddress?.description,
                    destinationIP: advertisement.destinationIP.description))) }
        }
    }

    /// R, S and O as letters, in that order ("SO" for a solicited override).
    static func letters(_ flags: NeighborAdvertisement.Flags) -> String {
        (flags.contains(.router) ? "R" : "") + (flags.contains(.solicited) ? "S" : "") + (flags.contains(.override) ? "O" : "")
    }

    func stop() -> [CapturedARP] {
        stopped.store(true, ordering: .releasing)
        pcap_breakloop(handle)
        _ = done.wait(timeout: .now() + 2)
        pcap_close(handle)
        return frames.withLock { $0 }
    }
}

/// Sends ARP requests (IPv4 targets) and Neighbor Solicitations (IPv6 targets) for the targets every interval
/// while capturing every answer.
enum ARPProbe {
    /// - Parameters:
    ///   - sourceIP6: the IPv6 source of the solicitations (required when a target is IPv6).
    ///   - unicastMAC: send the solicitations to this MAC and the target address itself, as a neighbour
    ///     unreachability probe does, instead of to the target's solicited-node group. ARP is unaffected.
    static func run(interface name: String, sourceIP: IPAddress?, sourceIP6: IPAddress? = nil, targets: [IPAddress],
                    unicastMAC: MACAddress? = nil, interval: Duration, duration: Duration) throws -> ProbeReport {
        let monitor = try LinkMonitor()
        defer { monitor.stop() }
        guard let link = monitor.link(named: name), let mac = link.mac else {
            throw ProbeError(description: "interface \(name) not found or has no MAC")
        }
        // A socket to send from; its filter matches nothing, so nothing queues on it.
        let socket = try PacketSocket(interfaceIndex: link.index, interfaceName: name, protocol: .arp,
                                      filter: try PacketFilter(expression: "arp and arp[6:2] = 99"))
        defer { socket.close() }
        let hasIPv6 = targets.contains { $0.family == .ipv6 }
        let capture = try ARPCapture(interface: name, ownMAC: mac, filter: ARPCapture.filter(neighborAdvertisements: hasIPv6))
        capture.start()
        Thread.sleep(forTimeInterval: 0.05)  // let the capture settle before the first request
        let frames = try targets.map { target -> [UInt8] in
            switch target.family {
            case .ipv4:
                guard let sourceIP else { throw ProbeError(description: "an IPv4 target needs --source-ip") }
                return ARPCodec.request(for: target, from: mac, ip: sourceIP)
            case .ipv6:
                guard let sourceIP6 else { throw ProbeError(description: "an IPv6 target needs --source-ip6 or a global IPv6 address on \(name)") }
                return NDPCodec.solicitation(for: target, from: mac, sourceIP: sourceIP6,
                                             unicastTo: unicastMAC.map { ($0, target) })
            }
        }
        let offset = clockNanoseconds(CLOCK_REALTIME) - clockNanoseconds(CLOCK_MONOTONIC)
        let start = clockNanoseconds(CLOCK_MONOTONIC)
        let intervalNs = interval.nanosecondsClamped
        let end = start + duration.nanosecondsClamped
        var sent: [SentRequest] = []
        var tick = start
        while tick < end {
            for (target, frame) in zip(targets, frames) {
                let time = clockNanoseconds(CLOCK_REALTIME)
                let monotonic = clockNanoseconds(CLOCK_MONOTONIC)
                try socket.send(frame)
                sent.append(SentRequest(target: target.description, realtimeNs: time, monotonicNs: monotonic))
            }
            tick += intervalNs
            var wake = timespec(tv_sec: Int(tick / 1_000_000_000), tv_nsec: Int(tick % 1_000_000_000))
            while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, nil) == EINTR {}
        }
        Thread.sleep(forTimeInterval: 0.05)  // answers to the last requests
        let captured = capture.stop()
        return ProbeAnalysis.report(sent: sent, captured: captured, monotonicOffsetNs: offset,
                                    startNs: start, endNs: clockNanoseconds(CLOCK_MONOTONIC), intervalNs: intervalNs)
    }
}

extension Duration {
    var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
