import VIPModel

/// One endpoint port of one service, checked as that service's annotations say.
/// The spec is part of the identity, so a changed annotation restarts the checks with the new timing
/// (the monitor carries the endpoint's current health over).
public struct HealthTarget: Hashable, Sendable, CustomStringConvertible {
    public var service: ObjectKey
    public var address: IPAddress
    public var port: Int
    public var spec: HealthCheckSpec

    public init(service: ObjectKey, address: IPAddress, port: Int, spec: HealthCheckSpec) {
        self.service = service
        self.address = address
        self.port = port
        self.spec = spec
    }

    /// `192.0.2.3:8080` or `[2001:db8::3]:8080`: how URLs and Host headers write an endpoint.
    public var endpoint: String { address.withPort(port) }

    /// `192.0.2.3:8080 of default/web`, as log lines name the target.
    public var description: String { "\(endpoint) of \(service.namespacedName)" }
}

/// A target's health changed: `fall` failures or `rise` successes in a row.
public struct HealthTransition: Sendable, Hashable {
    public var target: HealthTarget
    public var healthy: Bool
    /// The last check's outcome and the streak, e.g. `connection refused (2 failures in a row)`.
    public var reason: String

    public init(target: HealthTarget, healthy: Bool, reason: String) {
        self.target = target
        self.healthy = healthy
        self.reason = reason
    }
}

/// What one check found, saying why it failed so logs and events name the cause.
public enum ProbeOutcome: Sendable, Hashable, CustomStringConvertible {
    /// Healthy; the detail says how (`connected`, `HTTP 200`).
    case healthy(String)
    /// The endpoint answered the SYN with a reset: nothing listens on the port.
    case refused
    /// No connection, or no status line, within the spec's timeout.
    case timedOut(Duration)
    /// The HTTP server answered with a status other than 2xx or 3xx.
    case httpStatus(Int)
    /// Anything else (unreachable network, a malformed answer, the peer closing early).
    case failed(String)

    public var isHealthy: Bool {
        if case .healthy = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .healthy(let detail): return detail
        case .refused: return "connection refused"
        case .timedOut(let limit): return "timed out after \(GoDuration.format(limit))"
        case .httpStatus(let code): return "HTTP status \(code)"
        case .failed(let message): return message
        }
    }
}

/// Runs one check of one target. Implementations must return within about `target.spec.timeout`:
/// the monitor holds one of its bounded probe slots for as long as a probe runs.
public protocol HealthProber: Sendable {
    func probe(_ target: HealthTarget) async -> ProbeOutcome
}
