import VIPModel

/// One local interface as the speaker needs it.
public struct InterfaceState: Sendable, Hashable {
    public var name: String
    public var index: Int32
    public var mac: MACAddress?
    public var up: Bool

    public init(name: String, index: Int32, mac: MACAddress?, up: Bool) {
        self.name = name
        self.index = index
        self.mac = mac
        self.up = up
    }
}

/// Where interface state comes from: netlink in production, a fake in tests.
public protocol InterfaceSource: Sendable {
    func current() -> [InterfaceState]
    /// One element per change; removed interfaces arrive with `up` false.
    func changes() -> AsyncStream<InterfaceState>
}

/// The packet side: answers requests from the `AnswerTable` and sends unsolicited announcements.
public protocol Responder: Sendable {
    /// Starts answering on the interface (idempotent); throws with the interface and the failing call.
    func open(_ interface: InterfaceState) throws
    func close(_ interfaceName: String)
    /// One unsolicited announcement of `address` on the interface (gratuitous ARP, both forms; or an
    /// unsolicited NA for IPv6).
    func announce(_ address: IPAddress, on interface: InterfaceState)
}
