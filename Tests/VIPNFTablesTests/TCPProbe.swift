#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Tiny blocking TCP ends for the traffic test, IPv4 and IPv6, every wait bounded. Sockets are made inside a
/// namespace (NetworkNamespace.run) and then used from the test's thread: a socket stays in its namespace.
enum TCPProbe {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// `text:port` as a socket address of its family.
    static func address(_ text: String, _ port: Int) -> (storage: sockaddr_storage, length: socklen_t, family: Int32) {
        var storage = sockaddr_storage()
        if text.contains(":") {
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                    address.pointee.sin6_family = sa_family_t(AF_INET6)
                    address.pointee.sin6_port = in_port_t(port).bigEndian
                    inet_pton(AF_INET6, text, &address.pointee.sin6_addr)
                }
            }
            return (storage, socklen_t(MemoryLayout<sockaddr_in6>.size), AF_INET6)
        }
        withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                address.pointee.sin_family = sa_family_t(AF_INET)
                address.pointee.sin_port = in_port_t(port).bigEndian
                inet_pton(AF_INET, text, &address.pointee.sin_addr)
            }
        }
        return (storage, socklen_t(MemoryLayout<sockaddr_in>.size), AF_INET)
    }

    /// The address part of a socket address, as inet_ntop writes it.
    static func text(_ storage: sockaddr_storage) -> String {
        var storage = storage
        let family = Int32(storage.ss_family)
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        withUnsafePointer(to: &storage) { pointer in
            if family == AF_INET6 {
                pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    var address = $0.pointee.sin6_addr
                    _ = inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count))
                }
            } else {
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    var address = $0.pointee.sin_addr
                    _ = inet_ntop(AF_INET, &address, &buffer, socklen_t(buffer.count))
                }
            }
        }
        return String(cString: buffer)
    }

    /// A listening socket on `address:port`.
    final class Listener: @unchecked Sendable {
        let fd: Int32

        init(_ text: String, _ port: Int) throws {
            var local = TCPProbe.address(text, port)
            fd = socket(local.family, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            let bound = withUnsafePointer(to: &local.storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, local.length) }
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
            var peer = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let connection = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(fd, $0, &length) }
            }
            guard connection >= 0 else { throw Failure(description: "accept: errno \(errno)") }
            defer { close(connection) }
            _ = Array(reply.utf8).withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
            return TCPProbe.text(peer)
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
            var remote = TCPProbe.address(text, port)
            let fd = socket(remote.family, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
            self.fd = fd
            var limit = timeval(tv_sec: timeout, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            let start = ContinuousClock.now
            let result = withUnsafePointer(to: &remote.storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, remote.length) }
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
