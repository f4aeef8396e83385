import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import VIPController
import VIPObservability

struct ControllerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "controller",
        abstract: "Assign addresses to LoadBalancer services, continuously (or --once).")

    @Flag(help: "Reconcile everything once and exit.")
    var once = false

    @Option(name: .customLong("lb-class"), help: "Serve services with this loadBalancerClass (default: only services without one).")
    var loadBalancerClass: String?

    @Option(help: "This controller's name in the leader lease (default: hostname-pid).")
    var identity: String?

    @Option(help: "Leader lease duration in milliseconds.")
    var leaseDurationMs: Int = 3000

    @Option(help: "Store history kept for watchers that reconnect, in seconds; the leader compacts older history.")
    var historyRetentionSeconds: Int = 300

    @Option(help: "Delete a node's lease once it has not changed for this many seconds (a node gone for good).")
    var deadNodeRetentionSeconds: Int = 3600

    @OptionGroup var observability: ObservabilityOptions

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            observability.bootstrapLogging()
            let logger = Logger(label: "controller")
            var settings = Controller.Settings(loadBalancerClass: loadBalancerClass)
            settings.leaseDuration = .milliseconds(leaseDurationMs)
            settings.renewInterval = .milliseconds(max(50, leaseDurationMs / 4))
            settings.historyRetention = .seconds(max(1, historyRetentionSeconds))
            settings.deadNodeRetention = .seconds(max(1, deadNodeRetentionSeconds))
            let name = identity ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
            let store = try storeOptions.open()
            let controller = Controller(store: store, identity: name, settings: settings, logger: logger)
            if once {
                let plan = try await controller.runOnce()
                for line in plan.log { print(line) }
                print("reconciled: \(plan.assignments.count) services with addresses, \(plan.writes.count) writes")
                return
            }
            let telemetry = Telemetry()
            let server = try await observability.startServer(default: "127.0.0.1:7472", handlers: StatusHandlers(
                metrics: { telemetry.render() },
                notReady: { await storeProblem(store) },
                alive: { controller.heartbeat.isAlive(within: .seconds(5)) }), logger: logger)
            let group = ServiceGroup(configuration: .init(
                services: [.init(service: ControllerService(controller: controller))],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
            try await group.run()
            await server?.stop()
        }
    }
}

/// Runs the controller under swift-service-lifecycle: SIGTERM cancels it, and it releases its lease.
struct ControllerService: Service {
    let controller: Controller

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await controller.run()
        }
    }
}
