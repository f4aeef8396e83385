import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import VIPController

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

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            var logger = Logger(label: "metalvip.controller")
            logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
            var settings = Controller.Settings(loadBalancerClass: loadBalancerClass)
            settings.leaseDuration = .milliseconds(leaseDurationMs)
            settings.renewInterval = .milliseconds(max(50, leaseDurationMs / 4))
            let name = identity ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
            let controller = Controller(store: try storeOptions.open(), identity: name, settings: settings, logger: logger)
            if once {
                let plan = try await controller.runOnce()
                for line in plan.log { print(line) }
                print("reconciled: \(plan.assignments.count) services with addresses, \(plan.writes.count) writes")
                return
            }
            let group = ServiceGroup(configuration: .init(
                services: [.init(service: ControllerService(controller: controller))],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
            try await group.run()
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
