/// The Ethernet II type values this module reads or writes.
public enum EtherType {
    public static let ipv4: UInt16 = 0x0800
    public static let arp: UInt16 = 0x0806
    public static let ipv6: UInt16 = 0x86DD
    /// 802.1Q customer tag.
    public static let vlan: UInt16 = 0x8100
    /// 802.1ad service tag (QinQ outer tag).
    public static let serviceVLAN: UInt16 = 0x88A8
    /// Pre-standard QinQ outer tag still seen on some switches.
    public static let legacyQinQ: UInt16 = 0x9100

    /// Tagged frames are dropped rather than unwrapped: the speaker answers on the untagged link only.
    static func isVLANTag(_ type: UInt16) -> Bool {
        type == vlan || type == serviceVLAN || type == legacyQinQ
    }
}
