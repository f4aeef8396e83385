import ArgumentParser
import Foundation
import VIPFileStore
import VIPObservability
import VIPStore

@main
struct MetalVIP: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metalvip",
        abstract: "Virtual IPs for bare-metal hosts, from the MetalLB manifests you already have.",
        subcommands: [Apply.self, Delete.self, Get.self, Describe.self, ControllerCommand.self, SpeakerCommand.self])
}

/// `--store DIR`, `METALVIP_STORE`, or /var/lib/metalvip.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Store directory (default: $METALVIP_STORE, else /var/lib/metalvip).",
                                            valueName: "DIR"))
    var store: String?

    var location: String {
        store ?? ProcessInfo.processInfo.environment["METALVIP_STORE"].flatMap { $0.isEmpty ? nil : $0 } ?? "/var/lib/metalvip"
    }

    func open() throws -> any Store {
        let location = location
        if location.hasPrefix("etcd://") {
            throw CLIError("the etcd store (\(location)) is not available in this build; use a directory")
        }
        do {
            // Timed and counted per operation; a no-op unless a daemon set up metrics.
            return InstrumentedStore(try FileStore(directory: location))
        } catch {
            throw CLIError("cannot open store \(location): \(error)")
        }
    }
}

/// A message for the user, printed alone, with exit status 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Prints to standard error without the C `stderr` global, which strict concurrency rejects.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Runs a command body, turning expected failures into one clear line on stderr and exit code 1.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch {
        printError(String(describing: error).hasPrefix("error:") ? "\(error)" : "error: \(error)")
        throw ExitCode.failure
    }
}
