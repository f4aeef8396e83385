import Foundation
import VIPModel

/// The controller's answer for one service: its addresses. The pool is not stored; it is derived from
/// the address and the current pools, so renaming a pool never leaves a stale name behind.
public struct ServiceAssignment: Sendable, Hashable, Codable {
    public var addresses: [IPAddress]

    public init(addresses: [IPAddress]) { self.addresses = addresses }
}

public enum EventReason: String, Sendable, Hashable, Codable {
    case ipAllocated = "IPAllocated"
    case allocationFailed = "AllocationFailed"
    case clearAssignment = "ClearAssignment"
    /// A speaker took the service's address: MetalLB's event for the announcing node.
    case nodeAssigned = "nodeAssigned"
    /// A speaker's health checks took an endpoint out of the service's forwarding, or put it back.
    case endpointUnhealthy = "EndpointUnhealthy"
    case endpointHealthy = "EndpointHealthy"

    public var type: String { self == .allocationFailed || self == .endpointUnhealthy ? "Warning" : "Normal" }
}

/// A Kubernetes-style event about one service.
public struct ServiceEvent: Sendable, Hashable, Codable {
    public var reason: EventReason
    public var message: String
    public var timestamp: String
    /// The endpoint a health event is about (`192.0.2.3:8080`), so views can tell which are healthy now.
    public var endpoint: String?

    public init(reason: EventReason, message: String, timestamp: String, endpoint: String? = nil) {
        self.reason = reason
        self.message = message
        self.timestamp = timestamp
        self.endpoint = endpoint
    }

    public var type: String { reason.type }
}

extension ServiceEvents {
    /// Endpoints whose latest health event says unhealthy: the checks' current verdict, as the nodes reported it.
    public var unhealthyEndpoints: [String] {
        var latest: [String: EventReason] = [:]
        for event in events {
            guard let endpoint = event.endpoint, event.reason == .endpointHealthy || event.reason == .endpointUnhealthy else { continue }
            latest[endpoint] = event.reason
        }
        return latest.filter { $0.value == .endpointUnhealthy }.keys.sorted()
    }
}

/// A service's recent events, newest last, capped so the record stays small.
public struct ServiceEvents: Sendable, Hashable, Codable {
    public static let limit = 30
    public var events: [ServiceEvent]

    public init(events: [ServiceEvent] = []) { self.events = events }

    /// Appends, unless the newest event already says the same: a reconcile that finds nothing new
    /// writes nothing. Returns whether anything changed.
    @discardableResult
    public mutating func record(_ reason: EventReason, _ message: String, at time: String, endpoint: String? = nil) -> Bool {
        if let last = events.last, last.reason == reason, last.message == message { return false }
        events.append(ServiceEvent(reason: reason, message: message, timestamp: time, endpoint: endpoint))
        if events.count > Self.limit { events.removeFirst(events.count - Self.limit) }
        return true
    }
}

/// JSON for every record MetalVIP writes: sorted keys, so equal content is equal bytes.
public enum RecordCoding {
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try JSONDecoder().decode(type, from: data)
    }

    /// Foundation's Swift-native format style: `ISO8601DateFormatter` builds an ICU formatter per call,
    /// which was half the time of `get services -A` and a share of every lease renewal.
    private static let rfc3339 = Date.ISO8601FormatStyle()

    /// RFC 3339 UTC, second precision: Kubernetes' timestamp format.
    public static func timestamp(_ date: Date = Date()) -> String {
        rfc3339.format(date)
    }

    /// Parses RFC 3339, with or without fractional seconds, `Z` or a numeric offset.
    public static func date(_ timestamp: String) -> Date? {
        try? rfc3339.parse(timestamp)
    }
}
