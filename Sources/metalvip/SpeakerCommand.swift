import ArgumentParser
import CLinuxShim
import Foundation
import Logging
import ServiceLifecycle
import VIPForwarding
import VIPHealthCheck
import VIPLink
import VIPNFTables
import VIPObservability
import VIPSpeaker

struct SpeakerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speaker",
        abstract: "Announce this node's VIPs on layer 2 (ARP), with leases in the store.")

    @Option(help: "This node's name (unique among speakers).")
    var node: String

    @Option(name: .customLong("interface"), help: "An interface to announce on (repeatable).")
    var interfaces: [String] = []

    @Option(name: .customLong("label"), help: "A node label key=value for nodeSelectors (repeatable).")
    var labels: [String] = []

    @Option(help: "Node lease duration in milliseconds: a dead node's VIPs move after this.")
    var leaseDurationMs: Int = 200

    @Option(help: "Node lease renew period in milliseconds.")
    var renewIntervalMs: Int = 50

    @Flag(inversion: .prefixedNo,
          help: "Carry traffic to each VIP's endpoints with nftables (table inet metalvip). --no-data-path leaves traffic to something else (kube-proxy, your own firewall).")
    var dataPath = true

    @Flag(inversion: .prefixedNo,
          help: "Turn on IPv4 and IPv6 forwarding when the data path is on. With --no-forwarding-sysctls they are left alone and /readyz names any that is off.")
    var forwardingSysctls = true

    @OptionGroup var observability: ObservabilityOptions

    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        if interfaces.isEmpty { throw ValidationError("at least one --interface is required") }
        if renewIntervalMs <= 0 || leaseDurationMs < 2 * renewIntervalMs {
            throw ValidationError("--lease-duration-ms (\(leaseDurationMs)) must be at least twice --renew-interval-ms (\(renewIntervalMs))")
        }
        _ = try parsedLabels()
    }

    func parsedLabels() throws -> [String: String] {
        var result: [String: String] = [:]
        for label in labels {
            let parts = label.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--label \"\(label)\": expected key=value") }
            result[String(parts[0])] = String(parts[1])
        }
        return result
    }

    func run() async throws {
        try await reportingErrors {
            observability.bootstrapLogging()
            var logger = Logger(label: "speaker")
            logger[metadataKey: "node"] = "\(node)"
            var settings = Speaker.Settings(node: node, interfaces: interfaces, labels: try parsedLabels())
            settings.leaseDuration = .milliseconds(leaseDurationMs)
            settings.renewInterval = .milliseconds(renewIntervalMs)
            let links: LinkMonitor
            do {
                links = try LinkMonitor()
            } catch {
                throw CLIError("cannot read interfaces through netlink: \(error)")
            }
            let table = AnswerTable()
            let responder = PacketResponder(table: table, logger: logger)
            let store = try storeOptions.open()
            let nftables = dataPath ? try openDataPath(logger: logger) : nil
            let speaker = Speaker(store: store, settings: settings, interfaces: links,
                                  responder: responder, table: table,
                                  dataPath: nftables.map { DataPath(applier: $0, health: HealthMonitor(prober: NetworkProber(), logger: logger)) },
                                  logger: logger)
            let telemetry = Telemetry()
            let node = node
            let server = try await observability.startServer(default: "127.0.0.1:7473", handlers: StatusHandlers(
                metrics: {
                    let counters = responder.counters.snapshot
                    for (name, values) in [("metallb_layer2_requests_received", counters.requests),
                                           ("metallb_layer2_responses_sent", counters.responses),
                                           ("metallb_layer2_gratuitous_sent", counters.gratuitous)] {
                        telemetry.advance(name, values.map { ([("ip", $0.key.description)], $0.value) })
                    }
                    telemetry.advance("metalvip_frames_dropped_total", counters.drops.map { ([("reason", $0.key)], $0.value) })
                    if let nftables {
                        let state = await speaker.forwardingState()
                        telemetry.publish("metalvip_service_endpoints_usable", state.services.sorted().map {
                            ([("service", $0.namespacedName)], Double(state.usableEndpoints(of: $0)))
                        })
                        if let traffic = try? await nftables.counters() {
                            telemetry.advance("metalvip_service_packets_total", traffic.map { ([("service", $0.key.namespacedName)], $0.value.packets) })
                            telemetry.advance("metalvip_service_bytes_total", traffic.map { ([("service", $0.key.namespacedName)], $0.value.bytes) })
                        }
                    }
                    telemetry.publish("metallb_speaker_announced", await speaker.announcements().map { service, address in
                        ([("ip", address.description), ("node", node), ("protocol", "layer2"),
                          ("service", service.namespacedName)], 1)
                    })
                    return telemetry.render()
                },
                // Every problem, one per line: a speaker still starting up must not hide a setting that stays wrong.
                notReady: {
                    var problems: [String] = []
                    if let problem = await storeProblem(store) { problems.append(problem) }
                    if let problem = await speaker.dataPathProblem() { problems.append(problem) }
                    if nftables != nil, let off = ForwardingSysctls.missing().first {
                        problems.append("sysctl \(off) is 0: the data path cannot forward (the speaker runs with --no-forwarding-sysctls)")
                    }
                    if table.isLapsed() { problems.append("node lease is not live (no successful renewal within \(leaseDurationMs) ms)") }
                    return problems.isEmpty ? nil : problems.joined(separator: "\n")
                },
                alive: { speaker.heartbeat.isAlive(within: .seconds(5)) }), logger: logger)
            let group = ServiceGroup(configuration: .init(
                services: [.init(service: SpeakerService(speaker: speaker))],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
            HeapTrimmer.start()
            try await group.run()
            await server?.stop()
            responder.closeAll()
            links.stop()
            let counters = responder.counters.snapshot
            logger.info("stopped", metadata: [
                "requests": "\(counters.requests.values.reduce(0, +))",
                "responses": "\(counters.responses.values.reduce(0, +))",
                "dropped": "\(counters.drops.values.reduce(0, +))",
            ])
        }
    }
}

/// Hands freed heap back to the system every 10 s, on a thread of its own that lives as long as the process.
/// glibc keeps what a large rebuild freed (at 10k services a snapshot rebuild frees tens of megabytes), so a
/// speaker's RSS stayed at its peak: at 10k VIPs, 118 MB before a trim and 97 MB after.
enum HeapTrimmer {
    static func start() {
        let thread = Thread {
            while true {
                Thread.sleep(forTimeInterval: 10)
                _ = malloc_trim(0)
            }
        }
        thread.name = "metalvip-heap-trim"
        thread.start()
    }
}

extension SpeakerCommand {
    /// Opens MetalVIP's nftables context and turns forwarding on (unless told not to), saying what it changed.
    func openDataPath(logger: Logger) throws -> NFTables {
        let nftables: NFTables
        do {
            nftables = try NFTables()
        } catch {
            throw CLIError("cannot open nftables for the data path: \(error) (run with --no-data-path to announce only)")
        }
        if forwardingSysctls {
            do {
                let changed = try ForwardingSysctls.enable()
                if !changed.isEmpty { logger.info("turned on \(changed.joined(separator: ", ")) for the data path") }
            } catch {
                throw CLIError("cannot turn on forwarding for the data path: \(error) (or run with --no-forwarding-sysctls)")
            }
        } else if !ForwardingSysctls.missing().isEmpty {
            logger.warning("forwarding is off (\(ForwardingSysctls.missing().joined(separator: ", "))) and --no-forwarding-sysctls leaves it so: VIP traffic is dropped until it is turned on")
        }
        return nftables
    }
}

/// Runs the speaker under swift-service-lifecycle: SIGTERM silences it, then it releases its claims.
struct SpeakerService: Service {
    let speaker: Speaker

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await speaker.run()
        }
    }
}
