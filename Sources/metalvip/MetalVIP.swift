import ArgumentParser
import Foundation
import VIPEtcdStore
import VIPFileStore
import VIPObservability
import VIPSQLiteStore
import VIPStore

@main
struct MetalVIP: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metalvip",
        abstract: "Virtual IPs for bare-metal hosts, from the MetalLB manifests you already have.",
        subcommands: [Apply.self, Delete.self, Get.self, Describe.self, ControllerCommand.self, SpeakerCommand.self])
}

/// `--store DIR|file:DIR|sqlite:DIR|etcd://HOST:PORT[,...]`, `METALVIP_STORE`, or /var/lib/metalvip; and how to reach etcd.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "A store directory (file:DIR or sqlite:DIR to choose its kind), or etcd://HOST:PORT[,HOST:PORT...] (default: $METALVIP_STORE, else /var/lib/metalvip).",
        valueName: "DIR|URL"))
    var store: String?

    @Option(name: .customLong("etcd-prefix"), help: ArgumentHelp("Key prefix in etcd (default: $METALVIP_ETCD_PREFIX, else /metalvip/).", valueName: "PREFIX"))
    var etcdPrefix: String?
    @Option(name: .customLong("etcd-ca"), help: ArgumentHelp("CA bundle that signed the etcd members' certificates; enables TLS.", valueName: "FILE"))
    var etcdCA: String?
    @Option(name: .customLong("etcd-cert"), help: ArgumentHelp("Client certificate for etcd (with --etcd-key); enables TLS.", valueName: "FILE"))
    var etcdCertificate: String?
    @Option(name: .customLong("etcd-key"), help: ArgumentHelp("Private key of --etcd-cert.", valueName: "FILE"))
    var etcdKey: String?
    @Option(name: .customLong("etcd-user"), help: ArgumentHelp("etcd user (default: $METALVIP_ETCD_USER); the password comes from $METALVIP_ETCD_PASSWORD or --etcd-password-file.", valueName: "NAME"))
    var etcdUser: String?
    @Option(name: .customLong("etcd-password-file"), help: ArgumentHelp("File holding the etcd user's password (kept off the command line).", valueName: "FILE"))
    var etcdPasswordFile: String?

    private static func environment(_ name: String) -> String? {
        ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    var location: String { store ?? Self.environment("METALVIP_STORE") ?? "/var/lib/metalvip" }

    func open() throws -> any Store {
        let location = location
        if EtcdConfiguration.isEtcdURL(location) {
            do {
                // Timed and counted per operation, as the file store is.
                return InstrumentedStore(try EtcdStore(try etcdConfiguration(location)))
            } catch {
                throw CLIError("cannot use store \(location): \(error)")
            }
        }
        do {
            // Timed and counted per operation; a no-op unless a daemon set up metrics.
            switch try EmbeddedStore(location) {
            case .files(let directory): return InstrumentedStore(try FileStore(directory: directory))
            case .database(let directory): return InstrumentedStore(try SQLiteStore(directory: directory))
            }
        } catch {
            throw CLIError("cannot open store \(location): \(error)")
        }
    }

    private func etcdConfiguration(_ location: String) throws -> EtcdConfiguration {
        var configuration = try EtcdConfiguration(url: location, prefix: etcdPrefix ?? Self.environment("METALVIP_ETCD_PREFIX")
                                                  ?? EtcdConfiguration.defaultPrefix)
        if etcdCA != nil || etcdCertificate != nil || etcdKey != nil {
            configuration.tls = .init(caFile: etcdCA, certificateFile: etcdCertificate, keyFile: etcdKey)
        }
        if let user = etcdUser ?? Self.environment("METALVIP_ETCD_USER") {
            let password: String
            if let file = etcdPasswordFile {
                do {
                    password = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .newlines)
                } catch {
                    throw CLIError("--etcd-password-file \(file): \(error.localizedDescription)")
                }
            } else if let fromEnvironment = Self.environment("METALVIP_ETCD_PASSWORD") {
                password = fromEnvironment
            } else {
                throw CLIError("--etcd-user \(user) needs a password: set METALVIP_ETCD_PASSWORD or --etcd-password-file")
            }
            configuration.credentials = .init(user: user, password: password)
        }
        return configuration
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
