/// The ARP opcode (RFC 826). Only the two IPv4-over-Ethernet operations matter to a speaker.
public enum ARPOperation: UInt16, Sendable, Hashable, CaseIterable {
    case request = 1
    case reply = 2
}
