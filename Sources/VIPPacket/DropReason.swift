/// Why a received frame was not accepted. Every parser failure is one of these, so a speaker can
/// count drops per reason; `label` is the stable snake_case string used as a Prometheus label.
public enum DropReason: Error, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    // MARK: Ethernet
    /// The frame ends before a header or field the parser needs.
    case truncated
    /// An 802.1Q, 802.1ad or legacy QinQ tag: the speaker serves untagged frames on its own interface only.
    case vlanTagged
    /// Ethernet source is a group (multicast/broadcast) or all-zero address, which no station sends from.
    case invalidEthernetSource

    // MARK: ARP (RFC 826, RFC 5227)
    /// Ethertype is not ARP (0x0806).
    case notARP
    /// Hardware type is not Ethernet (1).
    case badHardwareType
    /// Protocol type is not IPv4 (0x0800).
    case badProtocolType
    /// Hardware/protocol address lengths are not 6/4.
    case badAddressLengths
    /// An ARP message that is not a request (op 1) where a request was expected.
    case notRequest
    /// An ARP message that is not a reply (op 2) where a reply was expected.
    case notReply
    /// The sender hardware address (ARP sha, or an NDP source link-layer option) is zero or a group
    /// address; answering it would flood the segment.
    case invalidSenderMAC
    /// The ARP sender IP is multicast or the limited broadcast address, which no host owns.
    case invalidSenderIP

    // MARK: IPv6 / ICMPv6 / NDP (RFC 8200, RFC 4443, RFC 4861)
    /// Ethertype is not IPv6 (0x86DD).
    case notIPv6
    /// The IPv6 version nibble is not 6.
    case badIPVersion
    /// The IPv6 header is followed by an extension header; NDP never needs one, so we do not walk them.
    case extensionHeaders
    /// The upper-layer protocol is not ICMPv6 (58).
    case notICMPv6
    /// The ICMPv6 message (per the IPv6 payload length) is shorter than the message type requires.
    case truncatedICMP
    /// An ICMPv6 message other than Neighbor Solicitation (135) where one was expected.
    case notNeighborSolicitation
    /// An ICMPv6 message other than Neighbor Advertisement (136) where one was expected.
    case notNeighborAdvertisement
    /// IPv6 hop limit is not 255, so the message may have been forwarded from off-link (RFC 4861 §7.1).
    case hopLimitNot255
    /// The ICMPv6 checksum over the pseudo-header and message does not verify.
    case badChecksum
    /// ICMPv6 code is not 0.
    case badICMPCode
    /// The NDP target is multicast, or the ARP target is multicast or 255.255.255.255: no host answers for those.
    case targetIsMulticast
    /// The IPv6 source is a multicast address, which RFC 4291 forbids.
    case sourceIsMulticast
    /// An NDP option has length 0 (would loop forever in a naive walker).
    case badOptionLength
    /// An NDP option runs past the end of the message.
    case truncatedOption
    /// A source/target link-layer address option is not exactly 8 bytes, so it is not an Ethernet address.
    case badLinkLayerAddressOption
    /// A DAD solicitation (source ::) carries a source link-layer address option (RFC 4861 §7.1.1).
    case unspecifiedSourceWithSourceLLAOption
    /// A DAD solicitation (source ::) is not sent to a solicited-node multicast group (RFC 4861 §7.1.1).
    case unspecifiedSourceNotToSolicitedNode
    /// A Neighbor Advertisement to a multicast destination has the Solicited flag set (RFC 4861 §7.1.2).
    case solicitedFlagOnMulticast

    /// Short, stable, snake_case: safe to use as a metric label value and never renamed.
    public var label: String {
        switch self {
        case .truncated: "truncated"
        case .vlanTagged: "vlan_tagged"
        case .invalidEthernetSource: "invalid_ethernet_source"
        case .notARP: "not_arp"
        case .badHardwareType: "bad_hardware_type"
        case .badProtocolType: "bad_protocol_type"
        case .badAddressLengths: "bad_address_lengths"
        case .notRequest: "not_request"
        case .notReply: "not_reply"
        case .invalidSenderMAC: "invalid_sender_mac"
        case .invalidSenderIP: "invalid_sender_ip"
        case .notIPv6: "not_ipv6"
        case .badIPVersion: "bad_ip_version"
        case .extensionHeaders: "extension_headers"
        case .notICMPv6: "not_icmpv6"
        case .truncatedICMP: "truncated_icmp"
        case .notNeighborSolicitation: "not_neighbor_solicitation"
        case .notNeighborAdvertisement: "not_neighbor_advertisement"
        case .hopLimitNot255: "hop_limit_not_255"
        case .badChecksum: "bad_checksum"
        case .badICMPCode: "bad_icmp_code"
        case .targetIsMulticast: "target_is_multicast"
        case .sourceIsMulticast: "source_is_multicast"
        case .badOptionLength: "bad_option_length"
        case .truncatedOption: "truncated_option"
        case .badLinkLayerAddressOption: "bad_link_layer_address_option"
        case .unspecifiedSourceWithSourceLLAOption: "unspecified_source_with_slla"
        case .unspecifiedSourceNotToSolicitedNode: "unspecified_source_not_to_solicited_node"
        case .solicitedFlagOnMulticast: "solicited_flag_on_multicast"
        }
    }

    public var description: String { label }
}
