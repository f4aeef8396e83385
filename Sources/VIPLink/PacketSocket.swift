#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import Synchronization
import VIPModel

/// One AF_PACKET `SOCK_RAW` socket on one interface, with a kernel BPF filter attached before it is bound,
/// so the speaker never sees (or pays for) a frame the filter rejects. Frames are whole Ethernet frames.
/// Safe to share: receive, send and the options may be called from different threads; the hot path
/// (`receive`, `send`) does not allocate.
public final class PacketSocket: Sendable {
    /// The EtherType the socket is bound to, which decides what the kernel hands it before the filter runs.
    public enum LinkProtocol: Sendable, Hashable {
        /// ETH_P_ARP.
        case arp
        /// ETH_P_IPV6 (neighbor discovery).
        case ipv6
        /// ETH_P_ALL. Outgoing frames are ignored (PACKET_IGNORE_OUTGOING) so this behaves like the others.
        case all

        var etherType: UInt16 {
            switch self {
            case .arp: UInt16(ETH_P_ARP)
            case .ipv6: UInt16(ETH_P_IPV6)
            case .all: UInt16(ETH_P_ALL)
            }
        }
    }

    public let interfaceIndex: Int32
    public let interfaceName: String
    public let linkProtocol: LinkProtocol
    /// The filter attached in the kernel.
    public let filter: PacketFilter

    private let descriptor: SocketDescriptor
    /// PACKET_STATISTICS resets the kernel counters on every read, so the running total lives here.
    private let drops = Atomic<UInt64>(0)

    /// Opens the socket with protocol 0 (nothing is queued), attaches `filter`, then binds to the interface
    /// with the real protocol: no frame is ever queued unfiltered.
    public init(interfaceIndex: Int32, interfaceName: String, protocol linkProtocol: LinkProtocol, filter: PacketFilter) throws(LinkError) {
        self.interfaceIndex = interfaceIndex
        self.interfaceName = interfaceName
        self.linkProtocol = linkProtocol
        self.filter = filter
        // Index 0 would bind to every interface: never what a per-interface speaker means.
        guard interfaceIndex > 0 else {
            throw LinkError.system(interfaceName, index: interfaceIndex, "bind", errno: EINVAL)
        }
        let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw LinkError.system(interfaceName, index: interfaceIndex, "socket", errno: errno) }
        do throws(LinkError) {
            try Self.configure(fd, interfaceIndex: interfaceIndex, interfaceName: interfaceName,
                               protocol: linkProtocol, filter: filter)
        } catch {
            Glibc.close(fd)
            throw error
        }
        descriptor = SocketDescriptor(fd, interface: interfaceName, index: interfaceIndex)
    }

    private static func configure(_ fd: Int32, interfaceIndex: Int32, interfaceName: String,
                                  protocol linkProtocol: LinkProtocol, filter: PacketFilter) throws(LinkError) {
        func fail(_ operation: String) -> LinkError {
            LinkError.system(interfaceName, index: interfaceIndex, operation, errno: errno)
        }
        if linkProtocol == .all {
            var on: Int32 = 1
            guard setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &on, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
                throw fail("PACKET_IGNORE_OUTGOING")
            }
        }
        let attached = filter.withSocketProgram { program in
            setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, socklen_t(MemoryLayout<sock_fprog>.size))
        }
        guard attached == 0 else { throw fail("SO_ATTACH_FILTER") }
        var address = sockaddr_ll()
        address.sll_family = UInt16(AF_PACKET)
        address.sll_protocol = linkProtocol.etherType.bigEndian
        address.sll_ifindex = interfaceIndex
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_ll>.size))
            }
        }
        guard bound == 0 else { throw fail("bind") }
    }

    deinit { descriptor.close() }

    /// Waits up to `timeout` for one frame and copies it into `buffer` (truncated to fit); returns the byte
    /// count, or nil on timeout. EINTR is retried. Throws on socket errors, e.g. ENETDOWN once when the
    /// interface goes down (the socket resumes when it comes back up), and EBADF after `close()`.
    /// Blocks the calling thread: call it from a dedicated Thread, never from the Swift concurrency pool.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, timeout: Duration) throws(LinkError) -> Int? {
        guard let base = buffer.baseAddress, buffer.count > 0 else {
            throw LinkError.system(interfaceName, index: interfaceIndex, "recv", errno: EINVAL)
        }
        return try descriptor.withDescriptor("recv") { (fd: Int32) throws(LinkError) -> Int? in
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: timeout)
            while true {
                var waiting = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&waiting, 1, Self.pollMilliseconds(until: deadline, clock: clock))
                if ready < 0 {
                    if errno == EINTR { continue }
                    throw LinkError.system(interfaceName, index: interfaceIndex, "poll", errno: errno)
                }
                if ready > 0 {
                    let count = recv(fd, base, buffer.count, Int32(MSG_DONTWAIT))
                    if count >= 0 { return count }
                    let code = errno
                    // EAGAIN: a spurious wake-up (the frame went elsewhere); keep waiting until the deadline.
                    if code != EINTR && code != EAGAIN && code != EWOULDBLOCK {
                        throw LinkError.system(interfaceName, index: interfaceIndex, "recv", errno: code)
                    }
                }
                if clock.now >= deadline { return nil }
            }
        }
    }

    /// Sends one whole Ethernet frame (destination MAC first) out of this interface.
    /// Throws EINVAL for frames shorter than an Ethernet header.
    public func send(_ frame: [UInt8]) throws(LinkError) {
        guard frame.count >= 14 else {
            throw LinkError.system(interfaceName, index: interfaceIndex, "sendto", errno: EINVAL)
        }
        var address = sockaddr_ll()
        address.sll_family = UInt16(AF_PACKET)
        address.sll_protocol = (UInt16(frame[12]) << 8 | UInt16(frame[13])).bigEndian
        address.sll_ifindex = interfaceIndex
        address.sll_halen = 6
        withUnsafeMutableBytes(of: &address.sll_addr) { destination in
            for offset in 0..<6 { destination[offset] = frame[offset] }
        }
        try descriptor.withDescriptor("sendto") { (fd: Int32) throws(LinkError) in
            // Bounded: a signal storm must not turn a send into a spin.
            for _ in 0..<100 {
                let sent = frame.withUnsafeBytes { bytes in
                    withUnsafePointer(to: &address) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_ll>.size))
                        }
                    }
                }
                if sent == frame.count { return }
                if sent >= 0 {
                    throw LinkError(interface: interfaceName, interfaceIndex: interfaceIndex, operation: "sendto",
                                    message: "sent \(sent) of \(frame.count) bytes")
                }
                if errno != EINTR { throw LinkError.system(interfaceName, index: interfaceIndex, "sendto", errno: errno) }
            }
            throw LinkError.system(interfaceName, index: interfaceIndex, "sendto", errno: EINTR)
        }
    }

    /// Joins a link-layer multicast group (e.g. an IPv6 solicited-node group) so the NIC passes it up.
    /// The membership belongs to this socket and ends when it closes.
    public func join(multicast: MACAddress) throws(LinkError) {
        try membership(PACKET_ADD_MEMBERSHIP, "PACKET_ADD_MEMBERSHIP", multicast)
    }

    /// Leaves a group joined with `join(multicast:)`.
    public func leave(multicast: MACAddress) throws(LinkError) {
        try membership(PACKET_DROP_MEMBERSHIP, "PACKET_DROP_MEMBERSHIP", multicast)
    }

    private func membership(_ option: Int32, _ operation: String, _ group: MACAddress) throws(LinkError) {
        // The kernel would accept a unicast address here and program it into the multicast list.
        guard group.isMulticast else {
            throw LinkError(interface: interfaceName, interfaceIndex: interfaceIndex, operation: operation, errno: EINVAL,
                            message: "\(group) is not a multicast address")
        }
        var request = packet_mreq()
        request.mr_ifindex = interfaceIndex
        request.mr_type = UInt16(PACKET_MR_MULTICAST)
        request.mr_alen = 6
        let bytes = group.bytes
        withUnsafeMutableBytes(of: &request.mr_address) { address in
            for offset in 0..<6 { address[offset] = bytes[offset] }
        }
        try descriptor.withDescriptor(operation) { (fd: Int32) throws(LinkError) in
            guard setsockopt(fd, SOL_PACKET, option, &request, socklen_t(MemoryLayout<packet_mreq>.size)) == 0 else {
                throw LinkError.system(interfaceName, index: interfaceIndex, operation, errno: errno)
            }
        }
    }

    /// Frames the kernel dropped for this socket since it was opened (receive queue full), for metrics.
    /// After `close()` it keeps returning the last total.
    public func kernelDrops() -> UInt64 {
        let latest = try? descriptor.withDescriptor("PACKET_STATISTICS") { (fd: Int32) throws(LinkError) -> UInt64 in
            var stats = tpacket_stats()
            var length = socklen_t(MemoryLayout<tpacket_stats>.size)
            guard getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &stats, &length) == 0 else { return 0 }
            return UInt64(stats.tp_drops)
        }
        return drops.add(latest ?? 0, ordering: .relaxed).newValue
    }

    /// Idempotent. A receive in flight on another thread keeps the descriptor until it returns (at most its timeout).
    public func close() { descriptor.close() }

    /// poll(2)'s timeout for the time left until `deadline`, rounded up to whole milliseconds.
    private static func pollMilliseconds(until deadline: ContinuousClock.Instant, clock: ContinuousClock) -> Int32 {
        let (seconds, attoseconds) = clock.now.duration(to: deadline).components
        guard seconds >= 0, seconds > 0 || attoseconds > 0 else { return 0 }
        let milliseconds = seconds.multipliedReportingOverflow(by: 1000)
        guard !milliseconds.overflow else { return Int32.max }
        let total = milliseconds.partialValue + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: total)
    }
}
