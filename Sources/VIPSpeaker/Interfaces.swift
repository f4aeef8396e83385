import VIPLink
import VIPModel

/// Where interface state comes from: netlink in production, a fake in tests.
public protocol InterfaceSource: Sendable {
    func current() -> [LinkInfo]
    /// One element per change; removed interfaces arrive with `isUp` false.
    func changes() -> AsyncStream<LinkInfo>
}

extension LinkMonitor: InterfaceSource {
    public func current() -> [LinkInfo] { links() }
    public func changes() -> AsyncStream<LinkInfo> { changes }
}

/// The packet side: answers requests from the `AnswerTable` and sends unsolicited announcements.
public protocol Responder: Sendable {
    /// Starts answering on the interface (idempotent); throws with the interface and the failing call.
    func open(_ interface: LinkInfo) throws
    func close(_ interfaceName: String)
    /// One unsolicited announcement of `address` on the interface (gratuitous ARP, both forms; or an
    /// unsolicited NA for IPv6).
    func announce(_ address: IPAddress, on interface: LinkInfo)
}
