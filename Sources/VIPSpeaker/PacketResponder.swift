import Foundation
import Logging
import Synchronization
import VIPLink
import VIPModel
import VIPPacket

/// What the packet side saw and did, per address and per drop reason; the metrics read these.
public final class ResponderCounters: Sendable {
    public struct Snapshot: Sendable {
        public var requests: [IPAddress: UInt64] = [:]
        public var responses: [IPAddress: UInt64] = [:]
        public var gratuitous: [IPAddress: UInt64] = [:]
        /// By `DropReason.label`.
        public var drops: [String: UInt64] = [:]
        public var sendErrors: UInt64 = 0
    }

    private let state = Mutex(Snapshot())

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    func requested(_ address: IPAddress) { state.withLock { $0.requests[address, default: 0] += 1 } }
    func responded(_ address: IPAddress) { state.withLock { $0.responses[address, default: 0] += 1 } }
    func announced(_ address: IPAddress) { state.withLock { $0.gratuitous[address, default: 0] += 1 } }
    func dropped(_ reason: DropReason) { state.withLock { $0.drops[reason.label, default: 0] += 1 } }
    func sendFailed() { state.withLock { $0.sendErrors += 1 } }
}

/// Answers ARP requests and IPv6 Neighbor Solicitations on each open interface from the `AnswerTable`:
/// per interface one AF_PACKET socket and one thread for each protocol, with kernel filters so only ARP
/// requests and Neighbor Solicitations ever reach user space. IPv6 needs no address of our own: the
/// advertisement's source is the VIP itself.
public final class PacketResponder: Responder {
    /// ARP requests only (opcode 1): replies, gratuitous replies and everything else stay in the kernel.
    static let arpRequests = "arp and arp[6:2] = 1"
    /// ICMPv6 directly after the fixed IPv6 header (`icmp6` checks next header 58, no chain walk) with type
    /// 135 at byte 40: Neighbor Solicitations without extension headers. All other IPv6 stays in the kernel.
    static let neighborSolicitations = "icmp6 and ip6[40] = 135"

    public let table: AnswerTable
    public let counters: ResponderCounters
    private let logger: Logger
    private let sessions = Mutex<[String: InterfaceSessions]>([:])
    /// Serializes membership syncs: each reads the table after taking it, so the last one to run wins with
    /// the newest entries, whatever order the changes came from.
    private let syncing = Mutex<Void>(())
    /// Set while a membership sync is queued. Each sync reads the whole table, and a pass that announces 10k
    /// VIPs changed the table 10k times: one sync per change was O(VIPs²) a pass, 44% of a speaker at 10k.
    private let syncQueued = Atomic<Bool>(false)

    public init(table: AnswerTable, counters: ResponderCounters = ResponderCounters(), logger: Logger) {
        self.table = table
        self.counters = counters
        self.logger = logger
        table.onEntriesChange { [weak self] in self?.requestSync() }
    }

    /// Queues one sync for any number of table changes; a change after the queued sync has read the table
    /// queues another.
    private func requestSync() {
        guard !syncQueued.exchange(true, ordering: .acquiringAndReleasing) else { return }
        Task.detached { [weak self] in
            guard let self else { return }
            self.syncQueued.store(false, ordering: .releasing)
            self.syncMemberships()
        }
    }

    public func open(_ interface: LinkInfo) throws {
        // Same interface, same MAC: keep the sockets. A new index or a new MAC (answers and the unicast
        // destination check must use it) gets fresh sessions.
        if let existing = sessions.withLock({ $0[interface.name] }), existing.index == interface.index,
           existing.arp.mac == interface.mac { return }
        close(interface.name)
        let arp = try PacketSocket(interfaceIndex: interface.index, interfaceName: interface.name, protocol: .arp,
                                   filter: try PacketFilter(expression: Self.arpRequests))
        let ndp: PacketSocket
        do {
            ndp = try PacketSocket(interfaceIndex: interface.index, interfaceName: interface.name, protocol: .ipv6,
                                   filter: try PacketFilter(expression: Self.neighborSolicitations))
        } catch {
            arp.close()
            throw error
        }
        let pair = InterfaceSessions(
            arp: InterfaceSession(kind: .arp, socket: arp, index: interface.index, mac: interface.mac, table: table,
                                  counters: counters, logger: logger),
            ndp: InterfaceSession(kind: .ndp, socket: ndp, index: interface.index, mac: interface.mac, table: table,
                                  counters: counters, logger: logger))
        sessions.withLock { $0[interface.name] = pair }
        pair.arp.start()
        pair.ndp.start()
        // A new socket has no memberships: the VIPs already in the table for this interface get theirs now.
        syncMemberships()
    }

    public func close(_ interfaceName: String) {
        sessions.withLock { $0.removeValue(forKey: interfaceName) }?.stop()
    }

    public func announce(_ address: IPAddress, on interface: LinkInfo) {
        guard let mac = interface.mac, let session = sessions.withLock({ $0[interface.name] }) else { return }
        switch address.family {
        case .ipv4:
            for operation in [ARPOperation.request, .reply] {
                session.arp.send(ARPCodec.gratuitous(address, from: mac, operation: operation))
            }
            counters.announced(address)
        case .ipv6:
            // Override set, to ff02::1: moves every neighbour's cache entry to this MAC (RFC 4861 §7.2.6).
            session.ndp.send(NDPCodec.unsolicitedAdvertisement(address, from: mac))
            counters.announced(address)
        }
    }

    public func closeAll() {
        for session in sessions.withLock({ sessions in defer { sessions.removeAll() }; return Array(sessions.values) }) {
            session.stop()
        }
    }

    /// The link-layer groups the interface's NDP socket is in now (tests, metrics, debugging).
    public func memberships(on interfaceName: String) -> Set<MACAddress> {
        sessions.withLock { $0[interfaceName] }?.ndp.memberships ?? []
    }

    /// How long a group stays joined after its last VIP went (see `GroupMembership`).
    static let leaveDelay: Duration = .seconds(1)
    /// Set while a sync to leave lingering groups is scheduled.
    private let leaveScheduled = Atomic<Bool>(false)

    /// Brings every interface's solicited-node memberships in line with the table: a group is joined while at
    /// least one IPv6 VIP on that interface maps to it, and left a second after the last one goes.
    func syncMemberships() {
        let lingering = syncing.withLock { _ -> Bool in
            let open = sessions.withLock { Array($0.values) }
            guard !open.isEmpty else { return false }
            let entries = table.entries
            var lingering = false
            for session in open {
                let wanted = SolicitedNodeGroups(entries.lazy.filter { $0.value[session.index] != nil }.map(\.key))
                if session.ndp.apply(wanted, leaveDelay: Self.leaveDelay) { lingering = true }
            }
            return lingering
        }
        guard lingering, !leaveScheduled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        Task.detached { [weak self] in
            try? await Task.sleep(for: Self.leaveDelay)
            guard let self else { return }
            self.leaveScheduled.store(false, ordering: .releasing)
            self.requestSync()
        }
    }
}

/// The ARP and NDP sessions of one interface, opened and closed together.
struct InterfaceSessions: Sendable {
    let arp: InterfaceSession
    let ndp: InterfaceSession

    var index: Int32 { arp.index }

    func stop() {
        arp.stop()
        ndp.stop()
    }
}

/// One interface's socket for one protocol and its receive thread. Blocking receives never run on the Swift
/// concurrency pool.
final class InterfaceSession: Sendable {
    enum Kind: String, Sendable { case arp, ndp }

    let kind: Kind
    let socket: PacketSocket
    let index: Int32
    let mac: MACAddress?
    let table: AnswerTable
    let counters: ResponderCounters
    let logger: Logger
    private let stopped = Atomic<Bool>(false)
    /// Solicited-node groups this socket is in (NDP only).
    private let membership = Mutex(GroupMembership())

    init(kind: Kind, socket: PacketSocket, index: Int32, mac: MACAddress?, table: AnswerTable,
         counters: ResponderCounters, logger: Logger) {
        self.kind = kind
        self.socket = socket
        self.index = index
        self.mac = mac
        self.table = table
        self.counters = counters
        self.logger = logger
    }

    func start() {
        let thread = Thread { [self] in receiveLoop() }
        thread.name = "metalvip-\(kind.rawValue)-\(socket.interfaceName)"
        thread.start()
    }

    func stop() {
        stopped.store(true, ordering: .releasing)
    }

    func send(_ frame: [UInt8]) {
        do {
            try socket.send(frame)
        } catch {
            counters.sendFailed()
        }
    }

    var memberships: Set<MACAddress> { membership.withLock { $0.joined } }

    /// Joins the groups newly wanted and leaves those no VIP has wanted for `leaveDelay`. Returns whether
    /// some unwanted group is still joined (a later sync must leave it). A failed join is retried by the next
    /// sync; a failed leave (socket closed) is forgotten, the kernel dropped it anyway.
    func apply(_ wanted: SolicitedNodeGroups, leaveDelay: Duration) -> Bool {
        membership.withLock { membership in
            membership.follow(wanted, now: .now(), leaveDelay: leaveDelay, join: { group in
                do {
                    try socket.join(multicast: group)
                    return true
                } catch {
                    logger.warning("cannot join \(group) on \(socket.interfaceName): \(error)")
                    return false
                }
            }, leave: { group in
                do {
                    try socket.leave(multicast: group)
                } catch {
                    logger.debug("leaving \(group) on \(socket.interfaceName): \(error)")
                }
            })
            return membership.isLingering
        }
    }

    private func receiveLoop() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer {
            buffer.deallocate()
            socket.close()
        }
        var failures = 0
        while !stopped.load(ordering: .acquiring) {
            do {
                guard let count = try socket.receive(into: buffer, timeout: .milliseconds(200)) else { continue }
                failures = 0
                let frame = UnsafeRawBufferPointer(rebasing: buffer[0..<min(count, buffer.count)])
                switch kind {
                case .arp: handleRequest(frame)
                case .ndp: handleSolicitation(frame)
                }
            } catch {
                // ENETDOWN while the link is down, say: keep the socket, back off a little.
                failures += 1
                if failures == 1 { logger.debug("receive on \(socket.interfaceName): \(error)") }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
    }

    /// The per-packet ARP path: parse, look up, check the deadline (inside `answer`), reply.
    private func handleRequest(_ frame: UnsafeRawBufferPointer) {
        switch ARPCodec.parseRequest(frame) {
        case .failure(let reason):
            counters.dropped(reason)
        case .success(let request):
            // A unicast request for another host's MAC is not ours to answer.
            if !request.ethernetDestination.isBroadcast, let mac, request.ethernetDestination != mac { return }
            counters.requested(request.targetIP)
            guard let answerMAC = table.answer(for: request.targetIP, on: index) else { return }
            send(ARPCodec.reply(to: request, from: answerMAC))
            counters.responded(request.targetIP)
        }
    }

    /// The per-packet NDP path, the same shape: parse (RFC 4861 §7.1.1), look up with the deadline check,
    /// advertise. Multicast solicitations (address resolution, DAD) and unicast ones to this interface's MAC
    /// (neighbour unreachability probes) are answered; unicast to another MAC is someone else's.
    private func handleSolicitation(_ frame: UnsafeRawBufferPointer) {
        switch NDPCodec.parseSolicitation(frame) {
        case .failure(let reason):
            counters.dropped(reason)
        case .success(let solicitation):
            if !solicitation.ethernetDestination.isMulticast, let mac, solicitation.ethernetDestination != mac { return }
            counters.requested(solicitation.targetIP)
            guard let answerMAC = table.answer(for: solicitation.targetIP, on: index) else { return }
            send(NDPCodec.advertisement(answering: solicitation, from: answerMAC))
            counters.responded(solicitation.targetIP)
        }
    }
}
