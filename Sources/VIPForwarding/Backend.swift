import VIPModel

/// One address and port a service port's traffic is translated to.
public struct Backend: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var address: IPAddress
    public var port: Int

    public init(address: IPAddress, port: Int) {
        self.address = address
        self.port = port
    }

    public static func < (lhs: Backend, rhs: Backend) -> Bool {
        (lhs.address, lhs.port) < (rhs.address, rhs.port)
    }

    /// `192.0.2.11:8080` or `[2001:db8::11]:8080`, as kubectl prints endpoints.
    public var description: String {
        address.withPort(port)
    }
}
