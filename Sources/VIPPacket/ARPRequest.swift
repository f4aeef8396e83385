import VIPModel

/// An ARP request (op 1) for IPv4 over Ethernet, as received. Only the fields a responder needs:
/// who asked (so the reply can go back to them) and which address they asked about.
public struct ARPRequest: Sendable, Hashable {
    public var ethernetSource: MACAddress
    /// Normally broadcast; unicast for a cache-refresh request. Lets the speaker ignore requests
    /// addressed to another station's MAC that it sees only because the interface is promiscuous.
    public var ethernetDestination: MACAddress
    public var senderMAC: MACAddress
    /// 0.0.0.0 for an RFC 5227 probe.
    public var senderIP: IPAddress
    public var targetIP: IPAddress

    public init(
        ethernetSource: MACAddress, ethernetDestination: MACAddress = .broadcast,
        senderMAC: MACAddress, senderIP: IPAddress, targetIP: IPAddress
    ) {
        self.ethernetSource = ethernetSource
        self.ethernetDestination = ethernetDestination
        self.senderMAC = senderMAC
        self.senderIP = senderIP
        self.targetIP = targetIP
    }

    /// An RFC 5227 address probe (sender IP 0.0.0.0): someone checking whether `targetIP` is free.
    /// Answering it is how the current owner defends a VIP against a newcomer.
    public var isProbe: Bool { senderIP.value == 0 }

    /// An RFC 5227 announcement (gratuitous request, sender IP == target IP). If it is for one of our
    /// VIPs from another MAC, someone else claims the address.
    public var isAnnouncement: Bool { !isProbe && senderIP == targetIP }
}
