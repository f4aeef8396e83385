/// One exposed (port, protocol) pair: two services may share an address only if none of these clash.
public struct ServicePortKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var port: Int
    public var `protocol`: String

    public init(port: Int, protocol: String) {
        self.port = port
        self.protocol = `protocol`
    }

    public static func < (a: ServicePortKey, b: ServicePortKey) -> Bool {
        (a.port, a.protocol) < (b.port, b.protocol)
    }

    /// "80/TCP", as kubectl prints ports.
    public var description: String { "\(port)/\(`protocol`)" }
}
