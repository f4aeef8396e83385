import ArgumentParser
import Foundation
import VIPClient
import VIPModel

/// Reads `-f` files; `-` is standard input.
func readManifests(_ paths: [String]) throws -> [ManifestFile] {
    if paths.isEmpty { throw CLIError("must specify -f FILE (use - for standard input)") }
    return try paths.map { path in
        if path == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            guard let text = String(data: data, encoding: .utf8) else { throw CLIError("<stdin>: not UTF-8 text") }
            return ManifestFile(name: "<stdin>", text: text)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw CLIError("\(path): not UTF-8 text") }
        return ManifestFile(name: path, text: text)
    }
}

struct Apply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create or update objects from MetalLB/Kubernetes YAML. All documents apply, or none.")

    @Option(name: .customShort("f"), help: "A YAML file (repeatable); - reads standard input.")
    var files: [String] = []

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            let result = try await Applier(store: try storeOptions.open()).apply(try readManifests(files))
            for warning in result.warnings { printError(warning) }
            print(result.lines.joined(separator: "\n"))
        }
    }
}

struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete objects named in YAML files, or one object by kind and name.",
        discussion: "metalvip delete -f FILE | metalvip delete service NAME [-n NS]")

    @Option(name: .customShort("f"), help: "A YAML file (repeatable); - reads standard input.")
    var files: [String] = []

    @Argument(help: "service|ipaddresspool|l2advertisement|namespace|endpointslice|endpoints, then NAME.")
    var target: [String] = []

    @Option(name: [.customShort("n"), .long], help: "Namespace of the object.")
    var namespace: String = defaultNamespace

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            let applier = Applier(store: try storeOptions.open())
            let result: ApplyResult
            if !files.isEmpty {
                result = try await applier.delete(try readManifests(files))
            } else {
                guard target.count == 2, let kind = ResourceKind(argument: target[0])?.kind else {
                    throw CLIError("usage: metalvip delete -f FILE | metalvip delete service NAME [-n NS]")
                }
                result = try await applier.delete([ObjectKey(kind, namespace: namespace, name: target[1])])
            }
            print(result.lines.joined(separator: "\n"))
            for warning in result.warnings { printError(warning) }
            if !result.warnings.isEmpty { throw ExitCode.failure }
        }
    }
}

/// The resource names kubectl users type: plural, singular, and short forms.
enum ResourceKind: String, CaseIterable, ExpressibleByArgument {
    case services, ipaddresspools, l2advertisements, namespaces, servicel2statuses, nodes, endpointslices, endpoints

    init?(argument: String) {
        switch argument.lowercased() {
        case "services", "service", "svc": self = .services
        case "ipaddresspools", "ipaddresspool", "ipaddresspools.metallb.io", "ipaddresspool.metallb.io": self = .ipaddresspools
        case "l2advertisements", "l2advertisement", "l2advertisements.metallb.io", "l2advertisement.metallb.io": self = .l2advertisements
        case "namespaces", "namespace", "ns": self = .namespaces
        case "servicel2statuses", "servicel2status", "servicel2statuses.metallb.io": self = .servicel2statuses
        case "nodes", "node", "no": self = .nodes
        case "endpointslices", "endpointslice", "endpointslices.discovery.k8s.io", "endpointslice.discovery.k8s.io": self = .endpointslices
        case "endpoints", "ep": self = .endpoints
        default: return nil
        }
    }

    /// The stored kind, for commands that take objects (delete); nil for derived views.
    var kind: Kind? {
        switch self {
        case .services: .service
        case .ipaddresspools: .ipAddressPool
        case .l2advertisements: .l2Advertisement
        case .namespaces: .namespace
        case .endpointslices: .endpointSlice
        case .endpoints: .endpoints
        case .servicel2statuses, .nodes: nil
        }
    }
}
