#if canImport(Glibc)
import Glibc
#endif
import CNetlink
import VIPModel

/// What the speaker needs to know about one interface: where to bind, which MAC to answer with,
/// and whether answering is any use right now.
public struct LinkInfo: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var index: Int32
    /// Nil for links without a 6-byte hardware address (tun, ip6tnl, ...).
    public var mac: MACAddress?
    /// Administratively up and with carrier: IFF_UP and IFF_RUNNING (the kernel sets IFF_RUNNING exactly
    /// when the operational state is up or unknown). False for a removed link.
    public var isUp: Bool
    public var mtu: Int

    public init(name: String, index: Int32, mac: MACAddress?, isUp: Bool, mtu: Int) {
        self.name = name
        self.index = index
        self.mac = mac
        self.isUp = isUp
        self.mtu = mtu
    }

    /// Reads a libnl `rtnl_link` (borrowed; valid only during the call that lends it).
    init(link: OpaquePointer) {
        let flags = rtnl_link_get_flags(link)
        let up = UInt32(IFF_UP), running = UInt32(IFF_RUNNING)
        var mac: MACAddress?
        if let address = rtnl_link_get_addr(link), nl_addr_get_len(address) == 6,
           let raw = nl_addr_get_binary_addr(address) {
            mac = MACAddress(bytes: UnsafeRawBufferPointer(start: raw, count: 6))
        }
        self.init(name: rtnl_link_get_name(link).map { String(cString: $0) } ?? "",
                  index: rtnl_link_get_ifindex(link),
                  mac: mac,
                  isUp: flags & up != 0 && flags & running != 0,
                  mtu: Int(rtnl_link_get_mtu(link)))
    }

    public var description: String {
        "\(name) (index \(index)) \(mac.map { "\($0)" } ?? "no-mac") \(isUp ? "up" : "down") mtu \(mtu)"
    }
}
