#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Tiny blocking TCP ends for the traffic test, IPv4 only, every wait bounded. Sockets are made inside a
/// namespace (NetworkNamespace.run) and then used from the test's thread: a socket stays in its namespace.
enum TCPProbe {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func address(_ text: String, _ port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(port).bigEndian
        inet_pton(AF_INET, text, &address.sin_addr)
        return address
    }

    /// A listening socket on `address:port`.
    final class Listener: @unchecked Sendable {
        let fd: Int32

        init(_ text: String, _ port: Int) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var local = TCPProbe.address(text, port)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0, listen(fd, 8) == 0 else {
                let code = errno
                close(fd)
                throw Failure(description: "bind/listen \(text):\(port): errno \(code)")
            }
        }

        deinit { close(fd) }

        /// Accepts one connection waiting at most `timeout`, writes `reply`, and returns the peer's address.
        func serveOne(reply: String, timeout: Int32 = 2000) throws -> String {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, timeout) == 1 else { throw Failure(description: "no connection within \(timeout) ms") }
            var peer = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let connection = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(fd, $0, &length) }
            }
            guard connection >= 0 else { throw Failure(description: "accept: errno \(errno)") }
            defer { close(connection) }
            _ = Array(reply.utf8).withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            inet_ntop(AF_INET, &peer.sin_addr, &text, socklen_t(INET_ADDRSTRLEN))
            return String(cString: text)
        }
    }

    enum Outcome: Equatable {
        case connected
        case refused
        case timedOut
        case failed(Int32)
    }

    /// A connected (or refused) client socket; `connect` is bounded by SO_SNDTIMEO.
    final class Client: @unchecked Sendable {
        let fd: Int32
        let outcome: Outcome
        let elapsed: Duration

        init(to text: String, _ port: Int, timeout: Int = 2) throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
            self.fd = fd
            var limit = timeval(tv_sec: timeout, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            var remote = TCPProbe.address(text, port)
            let start = ContinuousClock.now
            let result = withUnsafePointer(to: &remote) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            let code = errno
            elapsed = ContinuousClock.now - start
            switch (result, code) {
            case (0, _): outcome = .connected
            case (_, ECONNREFUSED): outcome = .refused
            case (_, EINPROGRESS), (_, ETIMEDOUT), (_, EAGAIN): outcome = .timedOut
            default: outcome = .failed(code)
            }
        }

        deinit { close(fd) }

        /// Reads what the server wrote (up to 256 bytes), bounded by SO_RCVTIMEO.
        func read() -> String {
            var buffer = [UInt8](repeating: 0, count: 256)
            let count = recv(fd, &buffer, buffer.count, 0)
            return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : ""
        }
    }
}
