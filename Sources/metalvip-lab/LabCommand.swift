import ArgumentParser
import Foundation
import VIPLink
import VIPModel
import VIPPacket

/// Client-side tools for the namespace LAN: run inside the client namespace (`ip netns exec`).
@main
struct Lab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metalvip-lab",
        abstract: "Client-side probes, request loops and node backends for the namespace LAN (tests, bench and demo).",
        subcommands: [Probe.self, Blast.self, Requests.self, Serve.self])
}

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send ARP requests (IPv4 targets) or Neighbor Solicitations (IPv6 targets) every interval and report, per target, who answered (JSON on stdout).")

    @Option(help: "The client interface.") var interface = "eth0"
    @Option(help: "The client's own IPv4 address (sender of the requests; needed for IPv4 targets).") var sourceIP: String?
    @Option(name: .customLong("source-ip6"),
            help: "The client's own IPv6 address (source of the solicitations); default: the interface's first global IPv6 address.")
    var sourceIP6: String?
    @Option(name: .customLong("target"), help: "An address to ask for (repeatable).") var targets: [String]
    @Option(help: "Send IPv6 solicitations unicast to this MAC (a neighbour unreachability probe) instead of to the solicited-node group.")
    var unicastMAC: String?
    @Option(help: "Milliseconds between requests.") var intervalMs: Double = 5
    @Option(help: "How long to probe, in milliseconds.") var durationMs: Int = 2000

    func run() throws {
        let addresses = try targets.map { text -> IPAddress in
            guard let address = IPAddress(text) else { throw ValidationError("invalid --target \(text)") }
            return address
        }
        var source: IPAddress?
        if let sourceIP {
            guard let parsed = IPAddress(sourceIP), parsed.family == .ipv4 else { throw ValidationError("invalid --source-ip") }
            source = parsed
        } else if addresses.contains(where: { $0.family == .ipv4 }) {
            throw ValidationError("IPv4 targets need --source-ip")
        }
        var source6: IPAddress?
        if let sourceIP6 {
            guard let parsed = IPAddress(sourceIP6), parsed.family == .ipv6 else { throw ValidationError("invalid --source-ip6") }
            source6 = parsed
        } else if addresses.contains(where: { $0.family == .ipv6 }) {
            source6 = InterfaceAddresses.globalIPv6(on: interface)
            if source6 == nil { throw ValidationError("IPv6 targets need --source-ip6 (\(interface) has no global IPv6 address)") }
        }
        var unicast: MACAddress?
        if let unicastMAC {
            guard let parsed = MACAddress(unicastMAC), !parsed.isMulticast else { throw ValidationError("invalid --unicast-mac") }
            unicast = parsed
        }
        let report = try ARPProbe.run(interface: interface, sourceIP: source, sourceIP6: source6, targets: addresses,
                                      unicastMAC: unicast, interval: .nanoseconds(Int64(intervalMs * 1_000_000)),
                                      duration: .milliseconds(durationMs))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }
}

struct Blast: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send the malformed-frame corpus (VIPPacket.MalformedFrames) out of an interface.")

    @Option(help: "The interface to send from.") var interface = "eth0"
    @Option(help: "Corpus seed.") var seed: UInt64 = 1
    @Option(help: "Random frames in the corpus, besides the structured mutations.") var randomFrames = 20_000

    func run() throws {
        let monitor = try LinkMonitor()
        defer { monitor.stop() }
        guard let link = monitor.link(named: interface) else { throw ValidationError("interface \(interface) not found") }
        let socket = try PacketSocket(interfaceIndex: link.index, interfaceName: interface, protocol: .arp,
                                      filter: try PacketFilter(expression: "arp and arp[6:2] = 99"))
        defer { socket.close() }
        var sent = 0
        var refused = 0
        for frame in MalformedFrames.corpus(seed: seed, randomFrames: randomFrames) {
            do {
                try socket.send(frame)
                sent += 1
            } catch {
                refused += 1  // shorter than an Ethernet header, say
            }
            if sent % 2000 == 0 { Thread.sleep(forTimeInterval: 0.002) }  // don't overrun the veth queue
        }
        print("{\"sent\":\(sent),\"refused\":\(refused)}")
    }
}

/// Addresses configured on the client's interface, read with getifaddrs.
enum InterfaceAddresses {
    /// The first IPv6 address on `interface` outside fe80::/10: the source a host would pick for a global target.
    static func globalIPv6(on interface: String) -> IPAddress? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(list) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let name = entry.pointee.ifa_name, String(cString: name) == interface,
                  let address = entry.pointee.ifa_addr, address.pointee.sa_family == UInt16(AF_INET6) else { continue }
            let bytes = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
            }
            let value = bytes.reduce(UInt128(0)) { $0 << 8 | UInt128($1) }
            if value >> 118 == 0x3FA { continue }  // fe80::/10
            return IPAddress(family: .ipv6, value: value)
        }
        return nil
    }
}
