import ArgumentParser
import Foundation
import VIPClient
import VIPModel
import VIPStore

extension OutputFormat: ExpressibleByArgument {}

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List services, endpointslices, endpoints, ipaddresspools or l2advertisements.")

    @Argument(help: "services | endpointslices | endpoints | ipaddresspools | l2advertisements | servicel2statuses | nodes")
    var resource: ResourceKind

    @Argument(help: "Names (services, endpointslices and endpoints; default all).")
    var names: [String] = []

    @Option(name: [.customShort("n"), .long], help: "Namespace (services, endpointslices, endpoints, servicel2statuses).")
    var namespace: String = defaultNamespace

    @Flag(name: [.customShort("A"), .customLong("all-namespaces")], help: "Every namespace.")
    var allNamespaces = false

    @Option(name: [.customShort("o"), .customLong("output")], help: "wide | json | yaml")
    var output: OutputFormat = .table

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            let store = try storeOptions.open()
            let scope = allNamespaces ? nil : namespace
            // Named objects in one namespace are point reads; listings read everything once.
            let snapshot = if let scope, !names.isEmpty, let kind = resource.kind, [.service, .endpointSlice, .endpoints].contains(kind) {
                try await ClusterSnapshot.load(from: store, objects: names.map { ObjectKey(kind, namespace: scope, name: $0) })
            } else {
                // No table of `get` shows events; at 10k services reading them was a fifth of the time.
                try await ClusterSnapshot.load(from: store, events: false)
            }
            for problem in snapshot.problems { printError("warning: \(problem)") }
            let view = ClusterView(snapshot: snapshot)
            switch resource {
            case .services:
                try requireNames(snapshot.services.map(\.resource.meta), scope: scope)
                print(view.services(namespace: scope, names: names, format: output))
            case .endpointslices:
                try requireNames(snapshot.endpointSlices.map(\.resource.meta), scope: scope)
                print(view.endpointSlices(namespace: scope, names: names, format: output))
            case .endpoints:
                try requireNames(snapshot.endpoints.map(\.resource.meta), scope: scope)
                print(view.endpoints(namespace: scope, names: names, format: output))
            case .ipaddresspools: print(view.pools(format: output))
            case .l2advertisements: print(view.advertisements(format: output))
            case .servicel2statuses: print(try await L2View.load(from: store).serviceL2Statuses(view, namespace: scope, format: output))
            case .nodes: print(try await L2View.load(from: store).nodesTable(format: output))
            case .namespaces: throw CLIError("get namespaces is not supported; namespaces only carry labels here")
            }
        }
    }

    /// kubectl's error for a named object that isn't there: `services "web" not found in namespace "default"`.
    func requireNames(_ objects: [ObjectMeta], scope: String?) throws {
        let found = Set(objects.filter { scope == nil || $0.namespace == scope }.map(\.name))
        if let missing = names.first(where: { !found.contains($0) }) {
            throw CLIError("\(resource.rawValue) \"\(missing)\" not found" + (scope.map { " in namespace \"\($0)\"" } ?? ""))
        }
    }
}

struct Describe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a service's spec, addresses and events.")

    @Argument(help: "service")
    var resource: ResourceKind

    @Argument(help: "The service name.")
    var name: String

    @Option(name: [.customShort("n"), .long], help: "Namespace.")
    var namespace: String = defaultNamespace

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            guard resource == .services else { throw CLIError("describe supports services only") }
            let store = try storeOptions.open()
            let snapshot = try await ClusterSnapshot.load(from: store)
            let view = ClusterView(snapshot: snapshot)
            let key = ObjectKey(.service, namespace: namespace, name: name)
            let announcement = try await L2View.load(from: store).announcement(for: view.addresses(of: key))
            guard let text = view.describe(service: key, announcement: announcement) else {
                throw CLIError("services \"\(name)\" not found in namespace \"\(namespace)\"")
            }
            print(text)
        }
    }
}
