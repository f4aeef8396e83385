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

/// Answers ARP requests on each open interface from the `AnswerTable`: one AF_PACKET socket and one
/// thread per interface, with a kernel filter so only ARP requests ever reach user space.
public final class PacketResponder: Responder {
    /// ARP requests only (opcode 1): replies, gratuitous replies and everything else stay in the kernel.
    static let arpRequests = "arp and arp[6:2] = 1"

    public let table: AnswerTable
    public let counters: ResponderCounters
    private let logger: Logger
    private let sessions = Mutex<[String: InterfaceSession]>([:])

    public init(table: AnswerTable, counters: ResponderCounters = ResponderCounters(), logger: Logger) {
        self.table = table
        self.counters = counters
        self.logger = logger
    }

    public func open(_ interface: LinkInfo) throws {
        if let existing = sessions.withLock({ $0[interface.name] }), existing.index == interface.index { return }
        close(interface.name)
        let socket = try PacketSocket(interfaceIndex: interface.index, interfaceName: interface.name, protocol: .arp,
                                      filter: try PacketFilter(expression: Self.arpRequests))
        let session = InterfaceSession(socket: socket, index: interface.index, mac: interface.mac, table: table,
                                       counters: counters, logger: logger)
        sessions.withLock { $0[interface.name] = session }
        session.start()
    }

    public func close(_ interfaceName: String) {
        sessions.withLock { $0.removeValue(forKey: interfaceName) }?.stop()
    }

    public func announce(_ address: IPAddress, on interface: LinkInfo) {
        guard let mac = interface.mac, let session = sessions.withLock({ $0[interface.name] }) else { return }
        switch address.family {
        case .ipv4:
            for operation in [ARPOperation.request, .reply] {
                session.send(ARPCodec.gratuitous(address, from: mac, operation: operation))
            }
            counters.announced(address)
        case .ipv6:
            break  // The NDP responder takes IPv6 (next milestone).
        }
    }

    public func closeAll() {
        for session in sessions.withLock({ sessions in defer { sessions.removeAll() }; return Array(sessions.values) }) {
            session.stop()
        }
    }
}

/// One interface's socket and its receive thread. Blocking receives never run on the Swift concurrency pool.
final class InterfaceSession: Sendable {
    let socket: PacketSocket
    let index: Int32
    let mac: MACAddress?
    let table: AnswerTable
    let counters: ResponderCounters
    let logger: Logger
    private let stopped = Atomic<Bool>(false)

    init(socket: PacketSocket, index: Int32, mac: MACAddress?, table: AnswerTable, counters: ResponderCounters, logger: Logger) {
        self.socket = socket
        self.index = index
        self.mac = mac
        self.table = table
        self.counters = counters
        self.logger = logger
    }

    func start() {
        let thread = Thread { [self] in receiveLoop() }
        thread.name = "metalvip-arp-\(socket.interfaceName)"
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
                handle(UnsafeRawBufferPointer(rebasing: buffer[0..<min(count, buffer.count)]))
            } catch {
                // ENETDOWN while the link is down, say: keep the socket, back off a little.
                failures += 1
                if failures == 1 { logger.debug("receive on \(socket.interfaceName): \(error)") }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
    }

    /// The per-packet path: parse, look up, check the deadline (inside `answer`), reply.
    private func handle(_ frame: UnsafeRawBufferPointer) {
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
}
