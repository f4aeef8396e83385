import VIPModel
import VIPPacket

/// The link-layer groups (33:33:ff:xx:xx:xx) one interface must be in so that Neighbor Solicitations for its
/// IPv6 VIPs get past the NIC's multicast filter, each counted by how many VIPs map to it: VIPs that share
/// their low 24 bits share a group, and it is left only when the last of them goes.
struct SolicitedNodeGroups: Equatable, Sendable {
    private(set) var counts: [MACAddress: Int] = [:]

    init() {}

    /// The groups for the IPv6 addresses among `addresses` (IPv4 ones need none).
    init(_ addresses: some Sequence<IPAddress>) {
        for address in addresses where address.family == .ipv6 {
            counts[Self.group(of: address), default: 0] += 1
        }
    }

    /// The Ethernet group an NS for `address` is sent to: its solicited-node group's MAC.
    static func group(of address: IPAddress) -> MACAddress {
        NDPCodec.multicastMAC(for: NDPCodec.solicitedNodeGroup(of: address))
    }

    /// What to do to go from `current` to these groups: join the groups only these have, leave the groups
    /// only `current` has. A count that merely changes needs no system call.
    func changes(from current: SolicitedNodeGroups) -> (join: [MACAddress], leave: [MACAddress]) {
        let join = counts.keys.filter { current.counts[$0] == nil }.sorted()
        let leave = current.counts.keys.filter { counts[$0] == nil }.sorted()
        return (join, leave)
    }

    mutating func remove(_ group: MACAddress) {
        counts[group] = nil
    }
}
