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
        abstract: "Client-side probes for the namespace LAN (tests and bench).",
        subcommands: [Probe.self, Blast.self])
}

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send ARP requests every interval and report, per target, who answered (JSON on stdout).")

    @Option(help: "The client interface.") var interface = "eth0"
    @Option(help: "The client's own IPv4 address (sender of the requests).") var sourceIP: String
    @Option(name: .customLong("target"), help: "An address to ask for (repeatable).") var targets: [String]
    @Option(help: "Milliseconds between requests.") var intervalMs: Double = 5
    @Option(help: "How long to probe, in milliseconds.") var durationMs: Int = 2000

    func run() throws {
        guard let source = IPAddress(sourceIP), source.family == .ipv4 else { throw ValidationError("invalid --source-ip") }
        let addresses = try targets.map { text -> IPAddress in
            guard let address = IPAddress(text), address.family == .ipv4 else { throw ValidationError("invalid --target \(text)") }
            return address
        }
        let report = try ARPProbe.run(interface: interface, sourceIP: source, targets: addresses,
                                      interval: .nanoseconds(Int64(intervalMs * 1_000_000)), duration: .milliseconds(durationMs))
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
