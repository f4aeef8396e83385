#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Testing
import VIPLink
import VIPModel

/// Every test that needs namespaces lives under this suite so they run one at a time: they block threads
/// on receive timeouts and create interfaces, and the machine has two cores shared with other builds.
@Suite(.serialized, .timeLimit(.minutes(2)))
enum NamespaceTests {}

/// Fails the calling test (never skips) when not root: CI runs as root, and a silent skip would hide
/// that the adapter was never exercised.
func requireRoot() throws {
    try #require(getuid() == 0, "VIPLink namespace tests must run as root (they create network namespaces)")
}

/// Runs `ip` from iproute2 via Foundation's Process, bounded in time.
enum IPCommand {
    static let executable: String? = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs `ip ARGS`; returns stdout, throws with stderr on a non-zero exit or after 10 seconds.
    @discardableResult
    static func run(_ arguments: String...) throws -> String {
        guard let executable else { throw Failure(description: "iproute2's ip not found (apt-get install iproute2)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let deadline = ContinuousClock.now + .seconds(10)
        while process.isRunning && ContinuousClock.now < deadline { usleep(5_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            throw Failure(description: "ip \(arguments.joined(separator: " ")): timed out")
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard process.terminationStatus == 0 else {
            let reason = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw Failure(description: "ip \(arguments.joined(separator: " ")): exit \(process.terminationStatus): \(reason)")
        }
        return text
    }

    /// `ip -n NS -j link show dev NAME`, decoded: the independent oracle for LinkMonitor.
    static func link(_ name: String, namespace: String) throws -> [String: Any] {
        let json = try run("-n", namespace, "-j", "link", "show", "dev", name)
        let decoded = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]]
        return try #require(decoded?.first)
    }
}

/// Two network namespaces made for one test, joined by a veth pair: `mvla` in `a`, `mvlb` in `b`.
/// Names carry the pid so concurrent runs never collide and stale ones from dead runs can be recognised.
/// Nothing here touches the host namespace: the veth is created inside `a` with its peer moved straight into `b`.
final class VethPair: Sendable {
    static let prefix = "mvl"
    static let interfaceA = "mvla"
    static let interfaceB = "mvlb"
    private static let counter = Atomic<Int>(0)

    let a: String
    let b: String

    init() throws {
        try requireRoot()
        Self.removeStale()
        let serial = Self.counter.add(1, ordering: .relaxed).newValue
        let base = "\(Self.prefix)\(getpid())x\(serial)"
        a = base + "a"
        b = base + "b"
        do {
            try IPCommand.run("netns", "add", a)
            try IPCommand.run("netns", "add", b)
            try IPCommand.run("-n", a, "link", "add", Self.interfaceA, "type", "veth", "peer", "name", Self.interfaceB, "netns", b)
            // No IPv6 link-local address: keeps the kernel from sending its own frames into the test.
            try IPCommand.run("-n", a, "link", "set", Self.interfaceA, "addrgenmode", "none")
            try IPCommand.run("-n", b, "link", "set", Self.interfaceB, "addrgenmode", "none")
            try IPCommand.run("-n", a, "link", "set", Self.interfaceA, "up")
            try IPCommand.run("-n", b, "link", "set", Self.interfaceB, "up")
        } catch {
            remove()
            throw error
        }
    }

    /// Deleting a namespace destroys the veth in it; called from `defer` so failures clean up too.
    func remove() {
        for name in [a, b] { _ = try? IPCommand.run("netns", "delete", name) }
    }

    /// Namespaces with our prefix whose owning pid is gone (a crashed earlier run).
    static func removeStale() {
        guard let listing = try? IPCommand.run("netns", "list") else { return }
        for line in listing.split(separator: "\n") {
            guard let name = line.split(separator: " ").first, name.hasPrefix(prefix) else { continue }
            let digits = name.dropFirst(prefix.count).prefix { $0.isNumber }
            guard let pid = Int32(digits), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            _ = try? IPCommand.run("netns", "delete", String(name))
        }
    }

    /// Index, MAC and name of an interface as `ip` sees it.
    func interface(_ name: String, in namespace: String) throws -> (index: Int32, mac: MACAddress) {
        let link = try IPCommand.link(name, namespace: namespace)
        let index = try #require(link["ifindex"] as? Int)
        let mac = try #require((link["address"] as? String).flatMap(MACAddress.init))
        return (Int32(index), mac)
    }

    /// A PacketSocket on `interface`, opened inside `namespace`.
    func socket(_ interface: String, in namespace: String, _ linkProtocol: PacketSocket.LinkProtocol,
                filter expression: String) throws -> PacketSocket {
        let filter = try PacketFilter(expression: expression)
        let index = try self.interface(interface, in: namespace).index
        return try NetworkNamespace.run(namespace) {
            try PacketSocket(interfaceIndex: index, interfaceName: interface, protocol: linkProtocol, filter: filter)
        }
    }
}

/// Collects frames until the socket is quiet for `quiet`, at most `limit` frames: every loop is bounded.
func drain(_ socket: PacketSocket, quiet: Duration = .milliseconds(300), limit: Int = 64) throws -> [[UInt8]] {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 8)
    defer { buffer.deallocate() }
    var frames: [[UInt8]] = []
    while frames.count < limit, let count = try socket.receive(into: buffer, timeout: quiet) {
        frames.append(Array(buffer[0..<count]))
    }
    return frames
}

/// The first element of `stream` matching `predicate`, or nil after `limit`.
func firstChange(_ stream: AsyncStream<LinkInfo>, within limit: Duration,
                 where predicate: @escaping @Sendable (LinkInfo) -> Bool) async -> LinkInfo? {
    await withTaskGroup(of: LinkInfo?.self) { group in
        group.addTask {
            for await link in stream where predicate(link) { return link }
            return nil
        }
        group.addTask {
            try? await Task.sleep(for: limit)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}
