import ArgumentParser
import Logging
import VIPObservability
import VIPStore

extension LogFormat: ExpressibleByArgument {}

/// `--metrics-address`, `--log-format`, `--log-level`, shared by the daemons.
struct ObservabilityOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Serve /metrics, /healthz and /readyz on HOST:PORT; \"off\" disables.",
                               valueName: "HOST:PORT"))
    var metricsAddress: String?

    @Option(help: "Log format: text (logfmt) or json.")
    var logFormat: LogFormat = .text

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level \"\(logLevel)\": expected trace, debug, info, notice, warning or error")
        }
    }

    /// Installs the log handler; call before any logger is made.
    func bootstrapLogging() {
        LineLogHandler.bootstrap(format: logFormat, level: Logger.Level(rawValue: logLevel) ?? .info)
    }

    /// Starts the status endpoints unless turned off; `standard` is the daemon's default address.
    func startServer(default standard: String, handlers: StatusHandlers, logger: Logger) async throws -> StatusServer? {
        let address = metricsAddress ?? standard
        guard address != "off", !address.isEmpty else { return nil }
        let server = try await StatusServer.start(address, handlers: handlers)
        logger.info("serving /metrics, /healthz and /readyz", metadata: ["address": "\(server.address)"])
        return server
    }
}

/// Why the store is not usable right now (nil when it is), for `/readyz`.
func storeProblem(_ store: any Store) async -> String? {
    do {
        try await store.ping()
        return nil
    } catch {
        return "store \(store.name) unreachable: \(error)"
    }
}
