import Foundation
import Synchronization
import Testing
import VIPHealthCheck
import VIPModel

/// A TCP socket on loopback (127.0.0.1 or ::1, port chosen by the kernel), closed by `close()`.
final class LoopbackSocket: @unchecked Sendable {
    let fd: Int32
    let port: Int
    let host: String

    /// `listen`: false leaves the port bound but closed, so a connect gets a reset (refused).
    /// `port`: 0 lets the kernel choose one.
    init(_ host: String, listen: Bool, port requested: Int = 0) throws {
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno)!) }
        var storage = sockaddr_storage()
        var length: socklen_t
        if v6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = UInt16(requested).bigEndian
            inet_pton(AF_INET6, host, &address.sin6_addr)
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: address, as: sockaddr_in6.self) }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(requested).bigEndian
            inet_pton(AF_INET, host, &address.sin_addr)
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: address, as: sockaddr_in.self) }
        }
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
        }
        guard bound == 0, !listen || Glibc.listen(fd, 64) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw POSIXError(.init(rawValue: code)!)
        }
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let rawPort = v6 ? withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in6.self).sin6_port }
                         : withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in.self).sin_port }
        self.fd = fd
        self.host = host
        port = Int(UInt16(bigEndian: rawPort))
    }

    func close() { Glibc.close(fd) }

    /// Waits up to `timeout` for one connection.
    func accept(timeout: Duration) -> Int32? {
        var pollfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pollfd, 1, Int32(timeout / .milliseconds(1))) == 1 else { return nil }
        let client = Glibc.accept(fd, nil, nil)
        return client >= 0 ? client : nil
    }
}

/// Serves `count` connections on a thread: reads the request head, records it, answers `reply` (nil: close at once).
final class OneShotHTTPServer: Sendable {
    let socket: LoopbackSocket
    let requests = Mutex<[String]>([])

    init(_ host: String, reply: String?, count: Int = 1) throws {
        socket = try LoopbackSocket(host, listen: true)
        Thread.detachNewThread { [self] in
            for _ in 0..<count {
                guard let client = self.socket.accept(timeout: .seconds(5)) else { return }
                var head: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 1024)
                // At most 4 KiB or 2 s for the request head.
                let deadline = ContinuousClock.now + .seconds(2)
                while head.count < 4096, ContinuousClock.now < deadline, !String(decoding: head, as: UTF8.self).hasSuffix("\r\n\r\n") {
                    var pollfd = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
                    guard poll(&pollfd, 1, 100) >= 0 else { break }
                    if pollfd.revents == 0 { continue }
                    let read = Glibc.read(client, &buffer, buffer.count)
                    if read <= 0 { break }
                    head.append(contentsOf: buffer[..<read])
                }
                self.requests.withLock { $0.append(String(decoding: head, as: UTF8.self)) }
                if let reply { _ = reply.utf8CString.withUnsafeBytes { Glibc.write(client, $0.baseAddress, $0.count - 1) } }
                Glibc.close(client)
            }
        }
    }

    var port: Int { socket.port }
    func close() { socket.close() }
}

@Suite struct NetworkProberTests {
    static let hosts = ["127.0.0.1", "::1"]
    let prober = NetworkProber()

    private func target(_ host: String, _ port: Int, _ kind: HealthCheckSpec.Kind, timeout: Duration = .milliseconds(500)) -> HealthTarget {
        HealthTarget(service: web, address: IPAddress(host)!, port: port,
                     spec: HealthCheckSpec(kind: kind, interval: .seconds(1), timeout: timeout))
    }

    @Test(arguments: hosts) func tcpConnects(host: String) async throws {
        let listener = try LoopbackSocket(host, listen: true)
        defer { listener.close() }
        #expect(await prober.probe(target(host, listener.port, .tcp)) == .healthy("connected"))
    }

    @Test(arguments: hosts) func tcpRefused(host: String) async throws {
        let closed = try LoopbackSocket(host, listen: false)
        defer { closed.close() }
        #expect(await prober.probe(target(host, closed.port, .tcp)) == .refused)
        #expect(await prober.probe(target(host, closed.port, .http(path: "/"))) == .refused)
    }

    @Test(arguments: hosts) func http200SendsTheExactRequest(host: String) async throws {
        let server = try OneShotHTTPServer(host, reply: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        defer { server.close() }
        #expect(await prober.probe(target(host, server.port, .http(path: "/healthz?deep=1"))) == .healthy("HTTP 200"))
        let endpoint = host.contains(":") ? "[\(host)]:\(server.port)" : "\(host):\(server.port)"
        #expect(await eventually { server.requests.withLock { $0.count } == 1 })
        #expect(server.requests.withLock { $0 } == [
            "GET /healthz?deep=1 HTTP/1.1\r\nHost: \(endpoint)\r\nConnection: close\r\nUser-Agent: metalvip-health\r\n\r\n",
        ])
    }

    @Test(arguments: hosts) func http503IsUnhealthy(host: String) async throws {
        let server = try OneShotHTTPServer(host, reply: "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        defer { server.close() }
        let outcome = await prober.probe(target(host, server.port, .http(path: "/")))
        #expect(outcome == .httpStatus(503))
        #expect(outcome.description == "HTTP status 503")
        #expect(!outcome.isHealthy)
    }

    @Test(arguments: [("HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n", ProbeOutcome.healthy("HTTP 302")),
                      ("HTTP/1.0 204 No Content\r\n\r\n", .healthy("HTTP 204")),
                      ("HTTP/1.1 404 Not Found\r\n\r\n", .httpStatus(404)),
                      ("HTTP/1.1 199 Early\r\n\r\n", .httpStatus(199)),
                      ("SSH-2.0-OpenSSH_9.6\r\n", .failed("malformed HTTP status line \"SSH-2.0-OpenSSH_9.6\"")),
                      ("HTTP/1.1 20 OK\r\n\r\n", .failed("malformed HTTP status line \"HTTP/1.1 20 OK\""))])
    func statusLines(reply: String, expected: ProbeOutcome) async throws {
        let server = try OneShotHTTPServer("127.0.0.1", reply: reply)
        defer { server.close() }
        #expect(await prober.probe(target("127.0.0.1", server.port, .http(path: "/"))) == expected)
    }

    @Test func serverClosingWithoutAnswerFails() async throws {
        let server = try OneShotHTTPServer("127.0.0.1", reply: nil)
        defer { server.close() }
        #expect(await prober.probe(target("127.0.0.1", server.port, .http(path: "/")))
                == .failed("connection closed before an HTTP status line"))
    }

    /// The listener accepts the connection in the kernel but nobody ever answers: the check ends at its timeout.
    @Test(arguments: hosts) func httpThatNeverAnswersTimesOut(host: String) async throws {
        let silent = try LoopbackSocket(host, listen: true)
        defer { silent.close() }
        let started = ContinuousClock.now
        let outcome = await prober.probe(target(host, silent.port, .http(path: "/"), timeout: .milliseconds(300)))
        let elapsed = ContinuousClock.now - started
        #expect(outcome == .timedOut(.milliseconds(300)))
        #expect(outcome.description == "timed out after 300ms")
        #expect(elapsed >= .milliseconds(290) && elapsed < .seconds(1), "\(elapsed)")
    }

    /// 200 checks of silent endpoints at once all end at their timeout: none waits for a thread.
    @Test func manySilentChecksAreBoundedTogether() async throws {
        let silent = try LoopbackSocket("127.0.0.1", listen: true)
        defer { silent.close() }
        let started = ContinuousClock.now
        let outcomes = await withTaskGroup(of: ProbeOutcome.self) { group in
            for _ in 0..<200 {
                group.addTask { await prober.probe(target("127.0.0.1", silent.port, .http(path: "/"), timeout: .milliseconds(300))) }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let elapsed = ContinuousClock.now - started
        #expect(outcomes.count == 200)
        #expect(outcomes.allSatisfy { $0 == .timedOut(.milliseconds(300)) })
        #expect(elapsed < .milliseconds(1500), "\(elapsed)")
    }
}

/// The monitor with the real prober: a backend whose server goes away is reported after `fall` checks,
/// and healthy again after `rise` checks once it listens again.
@Suite struct NetworkMonitorTests {
    @Test(arguments: NetworkProberTests.hosts) func killedServerIsDetectedAndItsReturnToo(host: String) async throws {
        var listener = try LoopbackSocket(host, listen: true)
        let port = listener.port
        let target = HealthTarget(service: web, address: IPAddress(host)!, port: port,
                                  spec: HealthCheckSpec(kind: .tcp, interval: .milliseconds(100), timeout: .milliseconds(100)))
        let log = LogRecorder()
        let monitor = HealthMonitor(prober: NetworkProber(), logger: log.logger)
        let collector = TransitionCollector(monitor.transitions)
        await monitor.update(targets: [target])
        try await Task.sleep(for: .milliseconds(400))
        #expect(collector.all.isEmpty, "a listening server stays healthy")

        listener.close()
        #expect(await eventually { collector.all.count == 1 })
        #expect(collector.all.first == HealthTransition(target: target, healthy: false,
                                                        reason: "connection refused (2 failures in a row)"))
        #expect(await monitor.unhealthy() == [web: [target.address]])

        listener = try LoopbackSocket(host, listen: true, port: port)
        defer { listener.close() }
        #expect(await eventually { collector.all.count == 2 })
        #expect(collector.all.last == HealthTransition(target: target, healthy: true, reason: "connected (2 successes in a row)"))
        #expect(await monitor.unhealthy() == [:])
        #expect(log.lines.count == 2)
        await monitor.stop()
    }
}
