import VIPLease
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
}

/// The groups one socket is in. A group is joined as soon as a VIP wants it, and left only once no VIP has
/// wanted it for `leaveDelay`: a lapse empties the answer table and the re-proof refills it moments later, and
/// leaving and re-joining every group then cost two setsockopt calls per VIP, each linear in the socket's
/// groups (at 10k VIPs, the largest part of every lapse). A group kept a little longer only lets through
/// solicitations that nobody answers.
struct GroupMembership: Sendable {
    private(set) var joined: Set<MACAddress> = []
    /// Groups still joined that no VIP wants, and since when.
    private(set) var unwantedSince: [MACAddress: MonotonicInstant] = [:]

    var isLingering: Bool { !unwantedSince.isEmpty }

    /// Follows `wanted` at `now`: `join` each new group (a failed join returns false and is retried by the
    /// next call), `leave` each group unwanted for `leaveDelay` or longer.
    mutating func follow(_ wanted: SolicitedNodeGroups, now: MonotonicInstant, leaveDelay: Duration,
                         join: (MACAddress) -> Bool, leave: (MACAddress) -> Void) {
        // Only the groups that need a call are sorted (for a stable order): at 10k VIPs sorting every group on
        // every sync was a large part of the sync, and a claim burst syncs many times.
        for group in wanted.counts.keys.filter({ !joined.contains($0) }).sorted() {
            if join(group) { joined.insert(group) }
        }
        for group in joined.filter({ wanted.counts[$0] == nil }).sorted() {
            let since = unwantedSince[group] ?? now
            if now - since >= leaveDelay {
                leave(group)
                joined.remove(group)
                unwantedSince[group] = nil
            } else {
                unwantedSince[group] = since
            }
        }
        if !unwantedSince.isEmpty { unwantedSince = unwantedSince.filter { wanted.counts[$0.key] == nil } }
    }
}
