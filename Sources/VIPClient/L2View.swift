import Foundation
import VIPAnnounce
import VIPLease
import VIPModel
import VIPStore

/// The layer-2 state as a client sees it: which speakers are live and who announces what.
/// Liveness follows the lease rules: a node is live if its lease changed while we watched, so the CLI
/// looks twice, one lease duration apart, instead of trusting anyone's wall clock.
public struct L2View: Sendable {
    public struct NodeRow: Sendable, Hashable {
        public var lease: NodeLease
        public var live: Bool
        public var vipCount: Int
    }

    public var nodes: [NodeRow]
    /// Claims whose holder is live.
    public var claims: [IPAddress: Claim]

    /// Reads the node leases twice, `settle` apart (at most the longest lease duration, capped at 2 s).
    public static func load(from store: any Store, settle: Duration? = nil) async throws -> L2View {
        let first = try await store.list(prefix: Keyspace.nodeLeasesPrefix)
        let longest = first.records.compactMap { try? RecordCoding.decode(NodeLease.self, from: $0.value).lease.duration }.max() ?? .zero
        try await Task.sleep(for: min(settle ?? longest, .seconds(2)))
        let second = try await store.list(prefix: Keyspace.nodeLeasesPrefix)
        let before = Dictionary(first.records.map { ($0.key, $0.modRevision) }, uniquingKeysWith: { a, _ in a })
        var leases: [(NodeLease, Bool)] = []
        for record in second.records {
            guard let lease = try? RecordCoding.decode(NodeLease.self, from: record.value) else { continue }
            leases.append((lease, before[record.key] != record.modRevision))
        }
        let liveNodes = Set(leases.filter(\.1).map(\.0.node))
        var claims: [IPAddress: Claim] = [:]
        for record in try await store.list(prefix: Keyspace.claimsPrefix).records {
            guard let address = ClaimPlanner.address(ofClaimKey: record.key),
                  let claim = try? RecordCoding.decode(Claim.self, from: record.value), liveNodes.contains(claim.node) else { continue }
            claims[address] = claim
        }
        let rows = leases.map { lease, live in
            NodeRow(lease: lease, live: live, vipCount: claims.values.filter { $0.node == lease.node }.count)
        }
        return L2View(nodes: rows.sorted { $0.lease.node < $1.lease.node }, claims: claims)
    }

    /// The announcing node of a service and the interfaces it answers on.
    public func announcement(for addresses: [IPAddress]) -> Claim? {
        addresses.lazy.compactMap { claims[$0] }.first
    }

    public func nodesTable(now: Date = Date(), format: OutputFormat) -> String {
        let live = nodes.filter(\.live)
        switch format {
        case .json: return DocumentOutput.json(DocumentOutput.list(live.map(document(of:))))
        case .yaml: return DocumentOutput.yaml(DocumentOutput.list(live.map(document(of:))))
        case .table, .wide:
            if live.isEmpty { return "No live speakers" }
            var headers = ["NAME", "LEASE AGE", "VIPS", "INTERFACES"]
            if format == .wide { headers += ["LABELS", "LEASE DURATION"] }
            var table = Table(headers)
            for row in live {
                var cells = [row.lease.node, leaseAge(row.lease.lease.renewTime, now: now), String(row.vipCount),
                             row.lease.interfaces.map { "\($0.name)(\($0.up ? "up" : "down"))" }.joined(separator: ",")]
                if format == .wide {
                    cells += [labelsDisplay(row.lease.labels), "\(row.lease.lease.durationMilliseconds)ms"]
                }
                table.add(cells)
            }
            return table.rendered
        }
    }

    func document(of row: NodeRow) -> Value {
        .object([
            "name": .string(row.lease.node),
            "renewTime": .string(row.lease.lease.renewTime),
            "leaseDurationMilliseconds": .int(row.lease.lease.durationMilliseconds),
            "vips": .int(Int64(row.vipCount)),
            "labels": .object(row.lease.labels.mapValues(Value.string)),
            "interfaces": .array(row.lease.interfaces.map { .object(["name": .string($0.name), "up": .bool($0.up)]) }),
        ])
    }

    /// Age of the last renewal by the writer's wall clock: for people only, never for deciding liveness.
    func leaseAge(_ renewTime: String, now: Date) -> String {
        guard let renewed = RecordCoding.date(renewTime) else { return "<unknown>" }
        let seconds = now.timeIntervalSince(renewed)
        return seconds < 1 ? "<1s" : age(since: renewTime, now: now)
    }

    /// MetalLB's ServiceL2Status: per announced service, its node and interfaces.
    public func serviceL2Statuses(_ view: ClusterView, namespace scope: String?, format: OutputFormat) -> String {
        var items: [(service: Service, claim: Claim)] = []
        for stored in view.snapshot.services where scope == nil || stored.resource.meta.namespace == scope {
            if let claim = announcement(for: view.addresses(of: stored.resource.key)) { items.append((stored.resource, claim)) }
        }
        items.sort { ($0.service.meta.namespace, $0.service.name) < ($1.service.meta.namespace, $1.service.name) }
        func document(_ item: (service: Service, claim: Claim)) -> Value {
            .object([
                "apiVersion": .string("metallb.io/v1beta1"),
                "kind": .string("ServiceL2Status"),
                "metadata": .object([
                    "name": .string("l2-\(item.service.name)"),
                    "namespace": .string(item.service.meta.namespace),
                    "labels": .object([
                        "metallb.io/node": .string(item.claim.node),
                        "metallb.io/service-name": .string(item.service.name),
                        "metallb.io/service-namespace": .string(item.service.meta.namespace),
                    ]),
                ]),
                "status": .object([
                    "node": .string(item.claim.node),
                    "serviceName": .string(item.service.name),
                    "serviceNamespace": .string(item.service.meta.namespace),
                    "interfaces": .array(item.claim.interfaces.map { .object(["name": .string($0)]) }),
                ]),
            ])
        }
        switch format {
        case .json: return DocumentOutput.json(DocumentOutput.list(items.map(document)))
        case .yaml: return DocumentOutput.yaml(DocumentOutput.list(items.map(document)))
        case .table, .wide:
            if items.isEmpty { return view.noResources(scope) }
            var table = Table(["NAME", "NODE", "SERVICE NAME", "SERVICE NAMESPACE", "INTERFACES"])
            for item in items {
                table.add(["l2-\(item.service.name)", item.claim.node, item.service.name, item.service.meta.namespace,
                           item.claim.interfaces.joined(separator: ",")])
            }
            return table.rendered
        }
    }
}
