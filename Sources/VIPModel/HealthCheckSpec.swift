/// How MetalVIP checks a service's endpoints itself, set by the `metalvip.io/health-check*` annotations.
/// Bare hosts have no kubelet to mark a dead backend unready, so without checks a dead backend keeps its share of traffic.
public struct HealthCheckSpec: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// Healthy when a TCP connection opens within the timeout.
        case tcp
        /// Healthy when `GET path` answers with a 2xx or 3xx status line within the timeout.
        case http(path: String)
    }

    public static let defaultInterval: Duration = .seconds(1)
    public static let defaultTimeout: Duration = .milliseconds(500)
    public static let defaultFall = 2
    public static let defaultRise = 2
    /// Below 100ms checks cost more than they tell; above an hour an outage goes unnoticed.
    public static let intervalRange: ClosedRange<Duration> = Duration.milliseconds(100)...Duration.seconds(3600)
    public static let thresholdRange: ClosedRange<Int> = 1...100

    public var kind: Kind
    /// Time between the starts of two checks of one endpoint.
    public var interval: Duration
    /// How long one check may take; at most `interval`, so checks of one endpoint never overlap.
    public var timeout: Duration
    /// Failures in a row that make a healthy endpoint unhealthy.
    public var fall: Int
    /// Successes in a row that make an unhealthy endpoint healthy again.
    public var rise: Int

    public init(kind: Kind, interval: Duration = defaultInterval, timeout: Duration = defaultTimeout,
                fall: Int = defaultFall, rise: Int = defaultRise) {
        self.kind = kind
        self.interval = interval
        self.timeout = timeout
        self.fall = fall
        self.rise = rise
    }

    /// `http:/healthz every 1s, timeout 500ms, fall 2, rise 2`, for describe and logs.
    public var description: String {
        let check: String
        switch kind {
        case .tcp: check = "tcp"
        case .http(let path): check = "http:\(path)"
        }
        return "\(check) every \(GoDuration.format(interval)), timeout \(GoDuration.format(timeout)), fall \(fall), rise \(rise)"
    }
}

/// The MetalVIP annotations that turn on and tune health checks (there is no MetalLB equivalent).
public enum HealthCheckAnnotation: String, Sendable, CaseIterable {
    case check = "health-check"
    case interval = "health-check-interval"
    case timeout = "health-check-timeout"
    case fall = "health-check-fall"
    case rise = "health-check-rise"

    public static let prefix = "metalvip.io/"

    public var key: String { Self.prefix + rawValue }

    /// The field path errors name: `metadata.annotations[metalvip.io/health-check-timeout]`.
    public var path: String { "metadata.annotations[\(key)]" }
}

extension Service {
    /// The health check the service's annotations ask for, or nil when there is none (the EndpointSlice
    /// conditions are then trusted as they are). Validated in `init(document:)`, so a bad annotation fails `apply`.
    public func healthCheck() throws(FieldError) -> HealthCheckSpec? {
        func value(_ annotation: HealthCheckAnnotation) -> String? {
            meta.annotations[annotation.key]?.trimmingCharacters(in: .whitespaces)
        }
        guard let kindText = value(.check) else {
            if let stray = HealthCheckAnnotation.allCases.first(where: { $0 != .check && value($0) != nil }) {
                throw FieldError(path: stray.path, message: "has no effect without \(HealthCheckAnnotation.check.key)")
            }
            return nil
        }
        var spec = HealthCheckSpec(kind: try Self.healthCheckKind(kindText))
        if let text = value(.interval) {
            spec.interval = try Self.healthCheckDuration(text, .interval)
            guard HealthCheckSpec.intervalRange.contains(spec.interval) else {
                throw FieldError(path: HealthCheckAnnotation.interval.path, message: "must be between 100ms and 1h, got \"\(text)\"")
            }
        }
        if let text = value(.timeout) {
            spec.timeout = try Self.healthCheckDuration(text, .timeout)
            guard spec.timeout > .zero else {
                throw FieldError(path: HealthCheckAnnotation.timeout.path, message: "must be greater than 0, got \"\(text)\"")
            }
        }
        if spec.timeout > spec.interval {
            throw FieldError(path: HealthCheckAnnotation.timeout.path,
                             message: "\(GoDuration.format(spec.timeout)) is longer than the interval (\(GoDuration.format(spec.interval))): "
                                 + "a check must end before the next one starts")
        }
        if let text = value(.fall) { spec.fall = try Self.healthCheckThreshold(text, .fall) }
        if let text = value(.rise) { spec.rise = try Self.healthCheckThreshold(text, .rise) }
        return spec
    }

    private static func healthCheckKind(_ text: String) throws(FieldError) -> HealthCheckSpec.Kind {
        let path = HealthCheckAnnotation.check.path
        if text == "tcp" { return .tcp }
        guard text.hasPrefix("http:") else {
            throw FieldError(path: path, message: "unsupported value \"\(text)\": must be \"tcp\" or \"http:/PATH\"")
        }
        let target = String(text.dropFirst("http:".count))
        guard target.hasPrefix("/") else {
            throw FieldError(path: path, message: "HTTP path \"\(target)\" must start with \"/\"")
        }
        // The path goes into the request line as is: a space or control character would break the request.
        guard target.unicodeScalars.allSatisfy({ (0x21...0x7E).contains($0.value) }) else {
            throw FieldError(path: path, message: "HTTP path \"\(target.debugDescription.dropFirst().dropLast())\" must not contain "
                                 + "spaces, control or non-ASCII characters (percent-encode them)")
        }
        return .http(path: target)
    }

    private static func healthCheckDuration(_ text: String, _ annotation: HealthCheckAnnotation) throws(FieldError) -> Duration {
        guard let duration = GoDuration.parse(text) else {
            throw FieldError(path: annotation.path, message: "invalid duration \"\(text)\": expected a number and a unit, like 500ms, 1s or 1.5s")
        }
        return duration
    }

    private static func healthCheckThreshold(_ text: String, _ annotation: HealthCheckAnnotation) throws(FieldError) -> Int {
        guard let count = Int(text), HealthCheckSpec.thresholdRange.contains(count) else {
            throw FieldError(path: annotation.path, message: "must be a whole number from 1 to 100, got \"\(text)\"")
        }
        return count
    }
}

import Foundation
