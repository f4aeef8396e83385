import VIPModel

/// An ARP reply (op 2) as received; used by probes and tests that watch who answers for an address.
public struct ARPReply: Sendable, Hashable {
    public var ethernetSource: MACAddress
    public var ethernetDestination: MACAddress
    /// The MAC that claims `senderIP`.
    public var senderMAC: MACAddress
    public var senderIP: IPAddress
    public var targetMAC: MACAddress
    public var targetIP: IPAddress

    public init(
        ethernetSource: MACAddress, ethernetDestination: MACAddress, senderMAC: MACAddress,
        senderIP: IPAddress, targetMAC: MACAddress, targetIP: IPAddress
    ) {
        self.ethernetSource = ethernetSource
        self.ethernetDestination = ethernetDestination
        self.senderMAC = senderMAC
        self.senderIP = senderIP
        self.targetMAC = targetMAC
        self.targetIP = targetIP
    }

    /// A gratuitous reply (RFC 5227 §3): sender IP == target IP, announcing rather than answering.
    public var isGratuitous: Bool { senderIP == targetIP }
}
