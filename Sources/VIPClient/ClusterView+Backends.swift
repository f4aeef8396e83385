import VIPModel
import VIPStore

/// `get endpointslices`, `get endpoints` and describe's `Endpoints:` line, in kubectl's shapes.
extension ClusterView {
    // MARK: endpointslices

    /// kubectl's columns: NAME ADDRESSTYPE PORTS ENDPOINTS AGE (NAMESPACE first with `-A`).
    /// - Parameter names: only these slices (all when empty).
    public func endpointSlices(namespace scope: String?, names: [String] = [], format: OutputFormat) -> String {
        let slices = snapshot.endpointSlices.filter { inScope($0.resource.meta.namespace, scope) }
            .filter { names.isEmpty || names.contains($0.resource.name) }
        switch format {
        case .json: return DocumentOutput.json(DocumentOutput.list(slices.map(\.document)))
        case .yaml: return DocumentOutput.yaml(DocumentOutput.list(slices.map(\.document)))
        case .table, .wide:
            if slices.isEmpty { return noResources(scope) }
            var table = Table((scope == nil ? ["NAMESPACE"] : []) + ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"])
            for stored in slices {
                let slice = stored.resource
                // As kubectl: every port and every endpoint's address, ready or not.
                let row = [slice.name, slice.addressType.rawValue,
                           Self.firstThree(slice.ports.map { String($0.port) }, empty: "<unset>"),
                           Self.firstThree(slice.endpoints.map(\.address.description), empty: "<unset>"),
                           age(since: slice.meta.creationTimestamp, now: now)]
                table.add((scope == nil ? [slice.meta.namespace] : []) + row)
            }
            return table.rendered
        }
    }

    // MARK: endpoints

    /// kubectl's columns: NAME ENDPOINTS AGE; ENDPOINTS lists the ready addresses with each port.
    public func endpoints(namespace scope: String?, names: [String] = [], format: OutputFormat) -> String {
        let objects = snapshot.endpoints.filter { inScope($0.resource.meta.namespace, scope) }
            .filter { names.isEmpty || names.contains($0.resource.name) }
        switch format {
        case .json: return DocumentOutput.json(DocumentOutput.list(objects.map(\.document)))
        case .yaml: return DocumentOutput.yaml(DocumentOutput.list(objects.map(\.document)))
        case .table, .wide:
            if objects.isEmpty { return noResources(scope) }
            var table = Table((scope == nil ? ["NAMESPACE"] : []) + ["NAME", "ENDPOINTS", "AGE"])
            for stored in objects {
                let endpoints = stored.resource
                let row = [endpoints.name, Self.readyHostPorts(endpoints.slices, portName: nil),
                           age(since: endpoints.meta.creationTimestamp, now: now)]
                table.add((scope == nil ? [endpoints.meta.namespace] : []) + row)
            }
            return table.rendered
        }
    }

    // MARK: describe

    /// describe's `Endpoints:` value for one service port: the ready backends of the service (its slices, else
    /// its v1 Endpoints) on the endpoint port of the same name, as `192.0.2.11:8080,192.0.2.12:8080`.
    /// - Parameter port: nil for a service without ports (addresses alone).
    public func endpointsLine(of service: ObjectKey, port: ServicePort?) -> String {
        Self.readyHostPorts(snapshot.backendSlices(of: service), portName: port.map { $0.name ?? "" })
    }

    /// kubectl's rule: ready endpoints only, `address:port` for each matching port (all ports when `portName` is
    /// nil; the bare address when a slice has no ports), the first three, then `+ N more...`; `<none>` when empty.
    static func readyHostPorts(_ slices: [EndpointSlice], portName: String?) -> String {
        var entries: [String] = []
        for slice in slices {
            let ready = slice.endpoints.filter(\.ready)
            if slice.ports.isEmpty {
                entries += ready.map(\.address.description)
                continue
            }
            for port in slice.ports where portName == nil || portName == (port.name ?? "") {
                entries += ready.map { $0.address.withPort(port.port) }
            }
        }
        return firstThree(entries, empty: "<none>")
    }

    /// `192.0.2.11:8080`, `[2001:db8::11]:8080`.
    /// kubectl's list cell: at most three entries, then ` + N more...`.
    static func firstThree(_ entries: [String], empty: String) -> String {
        if entries.isEmpty { return empty }
        let shown = entries.prefix(3).joined(separator: ",")
        return entries.count > 3 ? "\(shown) + \(entries.count - 3) more..." : shown
    }
}
