import VIPModel

/// Which endpoints of a service take traffic, and where a service port's traffic goes on them.
public enum BackendSelection {
    /// Kubernetes' rule: the ready endpoints; when none is ready, the serving-and-terminating ones
    /// (so a rolling restart that leaves only terminating pods still answers instead of resetting).
    public static func usable(_ endpoints: [EndpointSlice.Endpoint]) -> [EndpointSlice.Endpoint] {
        let ready = endpoints.filter(\.ready)
        if !ready.isEmpty { return ready }
        return endpoints.filter { $0.serving && $0.terminating }
    }

    /// The slice port a service port maps to, as kube-proxy maps them: same name (an unnamed service port
    /// matches the slice's unnamed port) and same protocol. nil when the slice does not carry that port.
    public static func endpointPort(for servicePort: ServicePort, in slice: EndpointSlice) -> EndpointSlice.Port? {
        let name = servicePort.name.flatMap { $0.isEmpty ? nil : $0 }
        return slice.ports.first { $0.name == name && $0.protocol == servicePort.protocol }
    }
}
