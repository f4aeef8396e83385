#if canImport(Glibc)
import Glibc
#endif
import CNetlink
import Foundation
import Synchronization

/// Interface state from rtnetlink via libnl-route-3: a snapshot (`links()`) and a stream of changes
/// (link added, removed, up/down, MAC, MTU, rename). The netlink sockets belong to the network namespace
/// of the thread that calls `init`; events are read on a dedicated thread, never the concurrency pool.
public final class LinkMonitor: Sendable {
    private let registry: LinkRegistry
    private let loop: LinkEventLoop

    public init() throws(LinkError) {
        registry = LinkRegistry()
        loop = try LinkEventLoop(registry: registry)
        loop.start()
    }

    deinit { stop() }

    /// Every link, by index.
    public func links() -> [LinkInfo] { registry.links() }

    public func link(named name: String) -> LinkInfo? { registry.link(named: name) }

    /// Each access is a new subscription that sees changes from then on, one element per change
    /// (a removed link arrives with `isUp` false). Subscribe first, then read `links()`, to miss nothing.
    /// Finishes when the monitor stops.
    public var changes: AsyncStream<LinkInfo> { registry.subscribe() }

    /// Idempotent. Streams finish now, and it returns once the event thread has freed libnl's handles
    /// (within its poll interval): exiting while libnl is mid-free trips libnl's own teardown.
    public func stop() {
        loop.stop()
        registry.close()
    }
}

/// The libnl side of LinkMonitor: a cache manager with a "route/link" cache. After `start()` only the
/// event thread touches these handles (libnl caches are not thread-safe), and it frees them on exit.
final class LinkEventLoop: @unchecked Sendable {
    /// Upper bound on how long a stopped monitor keeps its thread and sockets.
    static let pollMilliseconds: Int32 = 100
    static let threadName = "metalvip-links"

    private let manager: OpaquePointer
    private let cache: OpaquePointer
    /// For a full resync after lost events (ENOBUFS). Opened in `init`, next to the manager's sockets, because a
    /// netlink socket belongs to the namespace of the thread that creates it.
    private let syncSocket: OpaquePointer
    private let registry: LinkRegistry
    private let stopped = Atomic<Bool>(false)

    init(registry: LinkRegistry) throws(LinkError) {
        self.registry = registry
        var manager: OpaquePointer?
        var status = nl_cache_mngr_alloc(nil, NETLINK_ROUTE, 0, &manager)
        guard status == 0, let manager else { throw Self.failure("nl_cache_mngr_alloc", status) }
        var cache: OpaquePointer?
        status = nl_cache_mngr_add(manager, "route/link", { _, object, action, context in
            LinkEventLoop.changed(object, action, context)
        }, Unmanaged.passUnretained(registry).toOpaque(), &cache)
        guard status == 0, let cache else {
            nl_cache_mngr_free(manager)
            throw Self.failure("nl_cache_mngr_add route/link", status)
        }
        guard let syncSocket = nl_socket_alloc() else {
            nl_cache_mngr_free(manager)
            throw LinkError(interface: "", operation: "nl_socket_alloc", message: "out of memory")
        }
        status = nl_connect(syncSocket, NETLINK_ROUTE)
        guard status == 0 else {
            nl_socket_free(syncSocket)
            nl_cache_mngr_free(manager)
            throw Self.failure("nl_connect", status)
        }
        self.manager = manager
        self.cache = cache
        self.syncSocket = syncSocket
        registry.load(Self.snapshot(cache))
    }

    func start() {
        started.store(true, ordering: .releasing)
        let thread = Thread { [self] in run() }
        thread.name = Self.threadName
        thread.start()
    }

    /// Signalled by the event thread once libnl is freed.
    private let finished = DispatchSemaphore(value: 0)
    private let started = Atomic<Bool>(false)

    /// Waits (bounded) for the event thread to free libnl, unless called on that thread.
    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        guard started.load(ordering: .acquiring), Thread.current.name != Self.threadName else { return }
        _ = finished.wait(timeout: .now() + .milliseconds(Int(Self.pollMilliseconds) * 10))
    }

    private func run() {
        defer {
            nl_cache_mngr_free(manager)   // also frees the cache
            nl_socket_free(syncSocket)
            registry.close()
            finished.signal()
        }
        let fd = nl_cache_mngr_get_fd(manager)
        while !stopped.load(ordering: .relaxed) {
            var waiting = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&waiting, 1, Self.pollMilliseconds)
            if ready < 0 {
                // Only EINTR or ENOMEM are possible here; wait a beat rather than spin.
                if errno != EINTR { usleep(UInt32(Self.pollMilliseconds) * 1000) }
                continue
            }
            if ready > 0, nl_cache_mngr_data_ready(manager) < 0 {
                // Events were lost (receive buffer overrun): re-dump and let libnl report the differences.
                _ = nl_cache_resync(syncSocket, cache, { _, object, action, context in
                    LinkEventLoop.changed(object, action, context)
                }, Unmanaged.passUnretained(registry).toOpaque())
            }
        }
    }

    /// libnl's change callback; `context` is the unretained LinkRegistry.
    private static func changed(_ object: OpaquePointer?, _ action: Int32, _ context: UnsafeMutableRawPointer?) {
        guard let object, let context else { return }
        let registry = Unmanaged<LinkRegistry>.fromOpaque(context).takeUnretainedValue()
        let link = LinkInfo(link: object)
        if Int(action) == NL_ACT_DEL {
            registry.remove(link)
        } else {
            registry.update(link)
        }
    }

    private static func snapshot(_ cache: OpaquePointer) -> [LinkInfo] {
        var links: [LinkInfo] = []
        withUnsafeMutablePointer(to: &links) { pointer in
            nl_cache_foreach(cache, { object, context in
                guard let object, let context else { return }
                context.assumingMemoryBound(to: [LinkInfo].self).pointee.append(LinkInfo(link: object))
            }, pointer)
        }
        return links
    }

    private static func failure(_ operation: String, _ status: Int32) -> LinkError {
        LinkError(interface: "", operation: operation, message: String(cString: nl_geterror(status)))
    }
}
